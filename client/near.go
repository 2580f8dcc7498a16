package client

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// The near cache (WithNearCache): values this client read or wrote, kept in
// its process and served without a round trip while they are known to be
// current. It follows the change feed (nearfeed.go) to learn which keys
// changed, and the feed's sequence (nearseq.go) to learn when it may have
// missed a change: then it drops the whole partition's entries.
//
// An entry is served only while all of these hold:
//
//   - it is younger than ttl, counted from when the read (or write) that
//     fetched it was sent: the value was current at some moment after that,
//     so a served value is never older than ttl, whatever the feed does;
//   - its partition has not been dropped since that read was sent (the
//     partition's epoch is the same): no gap, no term change, no reconnect;
//   - the feed reached the client for that partition (a change or a beacon
//     in sequence) within the last three beacon periods, so that a cut feed
//     stops the serving within a few seconds even with a long ttl;
//   - the key has not expired on the node (Item.Expires).
//
// A change of the key announced on the feed removes its entry. A read or a
// write that races with such a change does not put back the older value: the
// change raises a floor on the key's reads in flight, and an answer below it
// is not kept. Every answer this client gets (Get, MGet, Scan, writes)
// removes an entry older than it, so a value served from the near cache is
// never older than one the client was already answered. An entry no longer
// served (its partition dropped, its ttl passed) stays, unserved, until the
// answer of the next read replaces it or eviction takes it: an answer below
// it (one overtaken, or an ack=primary write a failover lost) is not kept.
//
// Storage is a byte-bounded CLOCK (second-chance FIFO, an approximation of
// LRU) per shard (shards by partition), written here rather than taken from
// a library: the cache's conditional insert (only under the epoch of the
// read, only above the key's floor, only if newer than the entry) must
// happen under the same lock as the lookups and the feed's invalidations,
// which a general-purpose cache does not offer without a second lock around
// it (docs/dependencies.md). A hit only reads under the shard's read lock
// and sets the entry's referenced bit: Zipf-hot keys share a shard, and a
// list move per hit under an exclusive lock made 32 readers queue on it.

// WithNearCache keeps recently read values in the client's process, up to
// maxBytes (keys, values and about 128 bytes per entry), each for at most
// ttl. A Get served from it costs no message. It never returns a value older
// than ttl, nor one older than a value this client was already answered for
// that key; a change announced on the change feed removes the key's entry at
// once, and a gap in the feed's sequence, a term change or a reconnect drops
// the partition's entries (docs/PROTOCOL.md, "Change feed"). maxBytes <= 0
// or ttl <= 0 leaves the near cache off (the default). NearCacheStats
// reports its hits, misses and invalidations.
func WithNearCache(maxBytes int64, ttl time.Duration) Option {
	return func(c *config) { c.nearBytes, c.nearTTL = maxBytes, ttl }
}

// NearCacheStats are the near cache's counters since the client started.
type NearCacheStats struct {
	Hits           int64 // Gets answered from the near cache
	Misses         int64 // Gets that asked the cluster
	Invalidations  int64 // entries removed because the feed announced a change of their key
	PartitionDrops int64 // times a partition's entries were dropped: a gap in its sequence, a term change
	FeedLosses     int64 // times every entry was dropped: the connection lost, or feed messages nats.go dropped
	Evictions      int64 // entries removed to stay within maxBytes
	Entries        int64 // entries held now (those of dropped partitions included, unserved, until read again or evicted)
	Bytes          int64 // their accounted bytes
}

// NearCacheStats returns the near cache's counters; zero when it is off.
func (c *Client) NearCacheStats() NearCacheStats {
	if c.near == nil {
		return NearCacheStats{}
	}
	n := c.near
	s := NearCacheStats{
		Misses: n.misses.Load(), Invalidations: n.invalidations.Load(),
		PartitionDrops: n.drops.Load(), FeedLosses: n.losses.Load(), Evictions: n.evictions.Load(),
	}
	for i := range n.shards {
		sh := &n.shards[i]
		sh.mu.Lock()
		s.Hits += sh.hits.Load()
		s.Misses += sh.misses.Load()
		s.Entries += int64(len(sh.items))
		s.Bytes += sh.bytes
		sh.mu.Unlock()
	}
	return s
}

const (
	nearShards        = 16  // shards, by partition
	nearEntryOverhead = 128 // accounted bytes of an entry besides its key and value
	nearLiveBeacons   = 3   // beacon periods a partition may go unheard before its entries stop being served
)

// nearCache is the near cache's state. Its methods may be called by any
// number of goroutines; the feed's (nearfeed.go) by one.
type nearCache struct {
	ttl  time.Duration
	base time.Time // the origin of the monotonic nanoseconds below

	parts  atomic.Pointer[[]nearPart] // by partition; nil until the client knows P
	shards [nearShards]nearShard

	misses                                  atomic.Int64 // while P is unknown; then each shard counts its own
	invalidations, drops, losses, evictions atomic.Int64

	cut  chan nearCut  // tests: cut and restore the feed (export_test.go)
	done chan struct{} // closed when the feed goroutine has ended
}

// nearPart is one partition as the near cache sees it.
type nearPart struct {
	// epoch is gen<<1 | synced: it changes whenever the partition's entries
	// are dropped (gen) or its feed gets a baseline (synced). An entry is
	// valid only under the epoch, with synced set, in which its read was sent.
	epoch     atomic.Uint64
	liveUntil atomic.Int64 // nanoseconds since base until which the feed is known to reach the client
	st        seqState     // the feed goroutine's
}

// nearEntry is one key in a shard's queue.
type nearEntry struct {
	key        string
	item       Item
	epoch      uint64 // its partition's epoch when its read was sent
	deadline   int64  // nanoseconds since base: when its read was sent, plus ttl
	size       int64
	ref        atomic.Bool // served since it was last passed by eviction: it gets a second chance
	prev, next *nearEntry
}

// nearShard is a CLOCK of entries, bounded by bytes, with the floors of the
// reads and writes in flight of its keys.
type nearShard struct {
	mu      sync.RWMutex // a hit takes it shared; everything else exclusive
	items   map[string]*nearEntry
	lru     nearEntry // sentinel of the queue: new entries at lru.next, eviction looks at lru.prev
	bytes   int64
	max     int64
	flights map[string]*nearFlight

	hits, misses atomic.Int64 // Gets of its keys served from it, and not
}

// nearFlight is the reads and writes of one key in flight: an answer below
// floor (a change announced meanwhile) is not kept.
type nearFlight struct {
	n     int
	floor uint64
}

// nearToken is what a read or write of a key keeps from when it was sent.
type nearToken struct {
	key   string
	p     int    // -1: P unknown, nothing is kept
	epoch uint64 // the partition's epoch then
	sent  int64  // nanoseconds since base
}

func newNearCache(maxBytes int64, ttl time.Duration) *nearCache {
	n := &nearCache{ttl: ttl, base: time.Now(), cut: make(chan nearCut), done: make(chan struct{})}
	for i := range n.shards {
		sh := &n.shards[i]
		sh.items = map[string]*nearEntry{}
		sh.flights = map[string]*nearFlight{}
		sh.max = max(maxBytes/nearShards, 1)
		sh.lru.next, sh.lru.prev = &sh.lru, &sh.lru
	}
	return n
}

// setPartitions sizes the near cache for P partitions, once.
func (n *nearCache) setPartitions(p int) {
	if n.parts.Load() == nil && p > 0 {
		parts := make([]nearPart, p)
		n.parts.Store(&parts)
	}
}

func (n *nearCache) now() int64 { return int64(time.Since(n.base)) }

// partOf returns key's partition and its state, or -1 while P is unknown.
func (n *nearCache) partOf(key string) (int, *nearPart) {
	ps := n.parts.Load()
	if ps == nil {
		return -1, nil
	}
	p := partition.Of(key, len(*ps))
	return p, &(*ps)[p]
}

func (n *nearCache) shard(p int) *nearShard {
	if p < 0 {
		p = 0
	}
	return &n.shards[p%nearShards]
}

// get returns key's entry if it may be served now.
func (n *nearCache) get(key string) (Item, bool) {
	p, part := n.partOf(key)
	if part == nil {
		n.misses.Add(1)
		return Item{}, false
	}
	wall := time.Now()
	now := int64(wall.Sub(n.base))
	sh := n.shard(p)
	sh.mu.RLock()
	e := sh.items[key]
	if e == nil {
		sh.mu.RUnlock()
		sh.misses.Add(1)
		return Item{}, false
	}
	// Dropped with its partition (or invalidated), too old, or expired on the node:
	stale := e.epoch != part.epoch.Load() || now >= e.deadline || !e.item.Expires.IsZero() && !wall.Before(e.item.Expires)
	if !stale && now < part.liveUntil.Load() { // (else the feed has not been heard of lately: keep the entry, but ask)
		if !e.ref.Load() {
			e.ref.Store(true)
		}
		it := e.item
		sh.mu.RUnlock()
		sh.hits.Add(1)
		it.Value = bytes.Clone(it.Value) // the caller's to keep or change
		return it, true
	}
	sh.mu.RUnlock()
	// A stale entry stays until the answer of the read that follows
	// replaces it (keep), or eviction: until then it is the key's floor.
	sh.misses.Add(1)
	return Item{}, false
}

// begin registers a read or write of key about to be sent.
func (n *nearCache) begin(key string) nearToken {
	p, part := n.partOf(key)
	t := nearToken{key: key, p: p, sent: n.now()}
	if part != nil {
		t.epoch = part.epoch.Load()
	}
	sh := n.shard(p)
	sh.mu.Lock()
	f := sh.flights[key]
	if f == nil {
		f = &nearFlight{}
		sh.flights[key] = f
	}
	f.n++
	sh.mu.Unlock()
	return t
}

// endRead ends a read begun with t: it keeps the value read when nothing
// says it may be stale, and removes an older entry in any case.
func (n *nearCache) endRead(t nearToken, res *wire.Result, err error) {
	sh := n.shard(t.p)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	floor := sh.land(t.key)
	switch {
	case err != nil:
	case res.Code == wire.CodeOK:
		it := itemOf(t.key, res)
		it.Value = bytes.Clone(it.Value) // the caller gets res.Value
		n.keep(sh, t, floor, it)
	case res.Code == wire.CodeNotFound:
		sh.drop(t.key, 0)
	}
}

// endWrite ends a write begun with t. A set's value is kept at its new
// version (without a TTL: one with a TTL is dropped, as the node's clock
// sets its expiry); a delete, a failed write or one whose outcome is
// unknown drops the key's entry.
func (n *nearCache) endWrite(t nearToken, req *wire.Request, res *wire.Result, err error) {
	sh := n.shard(t.p)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	floor := sh.land(t.key)
	if err != nil || res.Code != wire.CodeOK {
		sh.invalidate(t.key) // its outcome unknown, or the key not as it was
		return
	}
	sh.raise(t.key, res.Version) // reads in flight must not bring back what came before it
	if req.Op != wire.OpSet || req.TTL != 0 {
		sh.drop(t.key, 0)
		return
	}
	n.keep(sh, t, floor, Item{Key: t.key, Value: bytes.Clone(req.Value), Version: res.Version, Flags: req.Flags})
}

// observe takes an answer for key that did not go through begin (MGet,
// MSet, MDelete, Scan): an entry older than version goes; with found false
// (the key was not found, or a write failed) any entry stops being served.
func (n *nearCache) observe(key string, version uint64, found bool) {
	p, _ := n.partOf(key)
	sh := n.shard(p)
	sh.mu.Lock()
	if found {
		sh.drop(key, version)
		sh.raise(key, version)
	} else {
		sh.invalidate(key)
	}
	sh.mu.Unlock()
}

// changed takes a change of key to version announced on the feed.
func (n *nearCache) changed(key string, version uint64) {
	p, _ := n.partOf(key)
	sh := n.shard(p)
	sh.mu.Lock()
	if sh.drop(key, version) {
		n.invalidations.Add(1)
	}
	sh.raise(key, version)
	sh.mu.Unlock()
}

// keep stores it as key's entry if the read or write t was sent under the
// partition's current, synced epoch, it is not below the key's floor, and
// it is not older than the entry. sh.mu is held.
func (n *nearCache) keep(sh *nearShard, t nearToken, floor uint64, it Item) {
	old := sh.items[t.key]
	if old != nil && old.item.Version > it.Version {
		// Never below what this client was served: an answer that was
		// overtaken, or a version a failover lost (ack=primary). The entry,
		// valid or not, stays as the key's floor.
		return
	}
	_, part := n.partOf(t.key)
	if part == nil || t.epoch&1 == 0 || part.epoch.Load() != t.epoch || it.Version < floor {
		if old != nil && old.item.Version < it.Version {
			sh.remove(old)
		}
		return
	}
	if old != nil { // as old as the answer, or older: the answer replaces it
		sh.remove(old)
	}
	e := &nearEntry{key: t.key, item: it, epoch: t.epoch, deadline: t.sent + int64(n.ttl),
		size: int64(len(t.key)+len(it.Value)) + nearEntryOverhead}
	if e.size > sh.max {
		return
	}
	for sh.bytes+e.size > sh.max && sh.lru.prev != &sh.lru {
		victim := sh.lru.prev
		if victim.ref.Swap(false) { // served since: once more round the queue
			sh.requeue(victim)
			continue
		}
		sh.remove(victim)
		n.evictions.Add(1)
	}
	sh.items[t.key] = e
	sh.bytes += e.size
	e.prev, e.next = &sh.lru, sh.lru.next
	e.prev.next, e.next.prev = e, e
}

// land ends one flight of key and returns its floor. sh.mu is held.
func (sh *nearShard) land(key string) uint64 {
	f := sh.flights[key]
	if f == nil {
		return 0
	}
	if f.n--; f.n <= 0 {
		delete(sh.flights, key)
	}
	return f.floor
}

// raise lifts the floor of key's flights to version. sh.mu is held.
func (sh *nearShard) raise(key string, version uint64) {
	if f := sh.flights[key]; f != nil {
		f.floor = max(f.floor, version)
	}
}

// invalidate stops key's entry from being served, keeping it as the key's
// floor (see keep). sh.mu is held.
func (sh *nearShard) invalidate(key string) {
	if e := sh.items[key]; e != nil {
		e.epoch = 0 // never a synced epoch
	}
}

// drop removes key's entry if its version is below version (any entry for
// version 0) and reports whether it did. sh.mu is held.
func (sh *nearShard) drop(key string, version uint64) bool {
	e := sh.items[key]
	if e == nil || version != 0 && e.item.Version >= version {
		return false
	}
	sh.remove(e)
	return true
}

func (sh *nearShard) remove(e *nearEntry) {
	delete(sh.items, e.key)
	sh.bytes -= e.size
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

// requeue moves e to the head of the queue.
func (sh *nearShard) requeue(e *nearEntry) {
	if sh.lru.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = &sh.lru, sh.lru.next
	e.prev.next, e.next.prev = e, e
}

// nearGet is Get through the near cache.
func (c *Client) nearGet(ctx context.Context, key string) (Item, error) {
	if it, ok := c.near.get(key); ok {
		return it, nil
	}
	t := c.near.begin(key)
	res, err := c.do(ctx, wire.Request{Op: wire.OpGet, Key: key}, "")
	c.near.endRead(t, &res, err)
	if err != nil {
		return Item{}, err
	}
	if err := resultErr(key, &res); err != nil {
		return Item{}, err
	}
	return itemOf(key, &res), nil
}

// nearWrite is write through the near cache.
func (c *Client) nearWrite(ctx context.Context, req wire.Request, ack string) (uint64, error) {
	t := c.near.begin(req.Key)
	res, err := c.do(ctx, req, ack)
	c.near.endWrite(t, &req, &res, err)
	if err != nil {
		return 0, err
	}
	if err := resultErr(req.Key, &res); err != nil {
		return 0, err
	}
	return res.Version, nil
}

// nearObserve takes the answers of a multi-key call: results[i] answers
// ops[i] (a zero Result: no answer).
func (c *Client) nearObserve(ops []wire.Request, results []wire.Result) {
	for i := range results {
		r := &results[i]
		switch {
		case r.Code == wire.CodeOK:
			c.near.observe(ops[i].Key, r.Version, true)
		case ops[i].Op == wire.OpGet && ops[i].TTL == 0 && r.Code != wire.CodeNotFound:
			// A failed read changes nothing (a failed touch may have).
		default: // not found, or a write that failed or whose outcome is unknown
			c.near.observe(ops[i].Key, 0, false)
		}
	}
}
