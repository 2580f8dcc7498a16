package node

import (
	"context"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Consul's blocking queries: a read with ?index=N waits until the index of
// what it reads rises above N, or until ?wait is over, and then answers with
// what there is. It sleeps on the change feed (changes.go): it reads again
// only when a change under its key or prefix was announced, never on a
// timer of its own.

// Limits of a blocking query's wait, as consul has them.
const (
	DefaultBlockingWait = 5 * time.Minute  // wait when ?wait is absent or 0
	MaxBlockingWait     = 10 * time.Minute // longer waits are cut to this
	blockingJitter      = 16               // up to wait/16 is added, so that waiters woken together do not come back together
)

// blocking is a KV read's blocking parameters.
type blocking struct {
	index uint64        // answer once the index is above it; 0 = answer at once
	wait  time.Duration // answer after this long at the latest
}

// parseBlocking reads ?index and ?wait as consul does: wait is a Go
// duration ("10s", "5000ms"), default 5 minutes, at most 10, plus jitter.
// Without index, wait is checked but nothing blocks.
func parseBlocking(q url.Values) (blocking, error) {
	var b blocking
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < 0 {
			return b, errBadRequest("bad wait %q: want a duration like 10s, 5000ms or 5m (at most %s)", s, MaxBlockingWait)
		}
		b.wait = d
	}
	if s := q.Get("index"); s != "" {
		index, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return b, errBadRequest("bad index %q: want an unsigned integer, the X-Consul-Index of an earlier answer", s)
		}
		b.index = index
	}
	switch {
	case b.wait == 0:
		b.wait = DefaultBlockingWait
	case b.wait > MaxBlockingWait:
		b.wait = MaxBlockingWait
	}
	b.wait += rand.N(b.wait/blockingJitter + 1)
	return b, nil
}

// kvQuery is what a KV GET reads: one key, or the keys under a prefix.
type kvQuery struct {
	key      string
	prefix   bool // key is a prefix (?recurse or ?keys)
	keysOnly bool // values are not needed (?keys)
}

// kvResult is a query's answer.
type kvResult struct {
	entries []kvEntry // in key order; none = 404
	index   uint64    // X-Consul-Index
}

// queryKV answers q, blocking as b says.
func (n *Node) queryKV(ctx context.Context, q kvQuery, b blocking) (kvResult, error) {
	if b.index == 0 {
		res, _, err := n.readKV(ctx, q, 0, true)
		return res, err
	}
	// Listen before reading, so that no change after the read goes unheard.
	w := n.feed.waiters.add(q.key, q.prefix)
	defer n.feed.waiters.remove(w)
	timer := time.NewTimer(b.wait)
	defer timer.Stop()
	final := false
	for {
		res, ready, err := n.readKV(ctx, q, b.index, final)
		if err != nil || ready {
			return res, err
		}
		select {
		case <-w.wake: // a change under the key: read again
			final = w.gone.Load() // it expired or was evicted: answer, though no index rose
		case <-timer.C: // the wait is over: answer with what there is
			final = true
		case <-n.feed.waiters.stopping(): // the node stops: answer now
			final = true
		case <-ctx.Done(): // the client went away
			return kvResult{}, ctx.Err()
		}
	}
}

// readKV reads q. ready reports that its index is above min, or final is
// set: the answer is due. A prefix query that is not due yet reads only the
// index, not the entries.
func (n *Node) readKV(ctx context.Context, q kvQuery, min uint64, final bool) (res kvResult, ready bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	if !q.prefix {
		resp, err := n.kvKey(ctx, q.key, min)
		// An absent key with no tombstone (it expired, was evicted, or its
		// tombstone was purged) answers index 0, and a 404 says 1: a client
		// blocking on a higher index saw the key present, so its absence is
		// the change it waits for, whenever it happened (before this query
		// came too, when no waiter was there to hear of it).
		gone := len(resp.Entries) == 0 && resp.Index == 0 && min > 1
		return kvResult{entries: resp.Entries, index: resp.Index}, final || gone || resp.Index > min, err
	}
	peers, err := n.kvPeers()
	if err != nil {
		return res, false, err
	}
	if res.index, err = n.kvIndex(ctx, peers, q.key, min); err != nil || (!final && res.index <= min) {
		return res, false, err
	}
	observe := res.index
	if alone(peers) {
		observe = 0 // one clock: every later write is above the index read first
	}
	res.entries, err = n.kvList(ctx, peers, q.key, q.keysOnly, observe)
	return res, err == nil, err
}

// BlockingQueries is the number of blocking KV queries waiting now.
func (n *Node) BlockingQueries() int {
	if n.feed == nil {
		return 0
	}
	return int(n.feed.waiters.count.Load()) - int(n.rc.waiting.Load()) - n.internalWaiters() // not Roost's own: the runtime config's (runtime_config.go), the catalog cache's
}
