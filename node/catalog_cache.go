package node

import (
	"sync"
	"time"
)

// The catalog cache. A catalog read gathers the reserved prefix from every
// node, and each node's store finds a prefix by walking all its keys: with
// many user keys that is the cost of a catalog read, though the catalog is
// small and changes rarely. So each node keeps its last complete read of
// the catalog's keys and answers from it until the catalog changes:
//
//   - a permanent waiter on the catalog's prefix (the blocking queries'
//     machinery, changes.go) holds a token once a change of a catalog key
//     was announced, here or on the change feed; the next read drops the
//     cached answer;
//   - this node's own catalog writes drop it when they are acknowledged,
//     so a client reads its own registration on the node it registered on;
//   - an answer is kept catalogCacheTTL at most, a bound on staleness
//     should a feed message be lost.
//
// A blocking read whose index the cached answer does not pass yet waits
// without reading anything.

// catalogCacheTTL bounds how long a cached catalog answer is used.
const catalogCacheTTL = time.Second

// catalogCache is a node's last complete read of the catalog's keys.
type catalogCache struct {
	mu    sync.Mutex
	w     *waiter  // holds a token once a catalog key changed; nil = no cache
	res   kvResult // the last read
	at    time.Time
	valid bool

	records map[string]decodedRecord // the records of the last read, decoded, by key
}

// decodedRecord is a catalog record decoded from its key's value at version.
type decodedRecord struct {
	version uint64
	rec     svcRecord
}

// decoded returns the records the last read decoded: a read decodes again
// only the keys whose version changed. Treat them as read only.
func (c *catalogCache) decoded() map[string]decodedRecord {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.records
}

// keepDecoded keeps the records a read decoded, for the next.
func (c *catalogCache) keepDecoded(records map[string]decodedRecord) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = records
}

// get returns the cached answer, if there is a fresh one.
func (c *catalogCache) get(now time.Time) (kvResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w == nil {
		return kvResult{}, false
	}
	select {
	case <-c.w.wake: // a catalog key changed
		c.valid = false
	default:
	}
	if !c.valid || now.Sub(c.at) >= catalogCacheTTL {
		return kvResult{}, false
	}
	return c.res, true
}

// put keeps res, read from start on. A change announced since is left as a
// token for the next get, which then drops res.
func (c *catalogCache) put(res kvResult, start time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w != nil {
		c.res, c.at, c.valid = res, start, true
	}
}

// drop forgets the cached answer.
func (c *catalogCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.valid = false
}

// startCatalogCache registers the cache's waiter; n.feed must be running.
func (n *Node) startCatalogCache() {
	c := &n.agent.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w = n.feed.waiters.add(svcPrefix, true)
}

// internalWaiters is how many of the feed's waiters are Roost's own (the
// cache's), not blocking queries of clients.
func (n *Node) internalWaiters() int {
	if n.agent == nil {
		return 0
	}
	c := &n.agent.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w == nil {
		return 0
	}
	return 1
}
