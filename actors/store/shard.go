package store

import (
	"fmt"
	"math"
	"strings"
	"sync"
)

// shard is one lock's worth of the store: an index from key to slab entry,
// the slab, the S3-FIFO queues and the shard's counters, all guarded by mu.
type shard struct {
	mu      sync.Mutex
	idx     index
	sl      slab
	pol     s3fifo
	budget  int64 // bytes this shard may account; 0 = unlimited
	bytes   int64 // accounted bytes of its entries
	ttlKeys int   // entries with an expiry, so the sweep can skip shards without any

	hits, misses, sets, deletes, evictions, expirations int64

	_ [64]byte // keep the next shard's lock off this shard's last cache line
}

func newShard(budget int64) shard {
	return shard{budget: budget, pol: newS3FIFO(budget)}
}

// nower reads the clock in Unix nanoseconds at most once per
// operation, and only when an expiry needs it.
type nower struct {
	clock Clock
	now   int64
	known bool
}

func (n *nower) get() int64 {
	if !n.known {
		n.now, n.known = n.clock.Now().UnixNano(), true
	}
	return n.now
}

// get returns the live entry of key.
func (sh *shard) get(h uint32, key string, clock Clock) (Entry, error) {
	sh.mu.Lock()
	i := sh.idx.find(&sh.sl, h, key)
	if i == 0 {
		sh.misses++
		sh.mu.Unlock()
		return Entry{}, ErrNotFound
	}
	e := sh.sl.at(i)
	if e.expires != 0 && e.expired(clock.Now().UnixNano()) {
		sh.drop(i)
		sh.expirations++
		sh.misses++
		sh.mu.Unlock()
		return Entry{}, ErrNotFound
	}
	sh.pol.touch(e)
	sh.hits++
	out := e.public(true)
	sh.mu.Unlock()
	return out, nil
}

// set writes req under hash h, taking a version from vc.
func (sh *shard) set(h uint32, req *SetRequest, vc *hlc) (Entry, error) {
	size := int64(len(req.Key)+len(req.Value)) + EntryOverhead
	if sh.budget > 0 && size > sh.budget {
		return Entry{}, fmt.Errorf("%w: %d bytes accounted, a shard holds %d", ErrTooLarge, size, sh.budget)
	}
	now := nower{clock: vc.clock}

	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.live(h, req.Key, &now)
	if req.CheckCAS && !sh.casHolds(i, req.CAS) {
		return Entry{}, ErrCASMismatch
	}
	version := vc.next()
	var expires int64
	if req.TTL > 0 {
		expires = now.get() + int64(req.TTL)
		if expires < 0 { // overflow: as good as never
			expires = math.MaxInt64
		}
	}
	value := valueString(req.Value)

	if i == 0 { // a new key
		sh.makeRoom(size)
		i = sh.sl.alloc()
		e := sh.sl.at(i)
		*e = entry{key: strings.Clone(req.Key), value: value, version: version, created: version,
			flags: req.Flags, expires: expires, hash: h}
		sh.idx.insert(h, i)
		sh.pol.insert(&sh.sl, i)
		sh.bytes += size
		if expires != 0 {
			sh.ttlKeys++
		}
		sh.sets++
		return e.public(true), nil
	}

	e := sh.sl.at(i)
	old := e.size()
	if sh.budget > 0 && sh.bytes-old+size > sh.budget {
		// Take the entry out of its queue so that making room cannot evict it.
		q := sh.pol.remove(&sh.sl, i)
		sh.bytes -= old
		sh.makeRoom(size)
		e = sh.sl.at(i)
		e.value = value
		sh.pol.requeue(&sh.sl, i, q)
		sh.bytes += size
	} else {
		e.value = value
		sh.pol.resized(e, size-old)
		sh.bytes += size - old
	}
	if (e.expires != 0) != (expires != 0) {
		if expires != 0 {
			sh.ttlKeys++
		} else {
			sh.ttlKeys--
		}
	}
	e.version, e.flags, e.expires = version, req.Flags, expires
	sh.pol.touch(e)
	sh.sets++
	return e.public(true), nil
}

// del deletes key under hash h and returns the delete's version.
func (sh *shard) del(h uint32, req *DeleteRequest, vc *hlc) (uint64, error) {
	now := nower{clock: vc.clock}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.live(h, req.Key, &now)
	if req.CheckCAS && !sh.casHolds(i, req.CAS) {
		return 0, ErrCASMismatch
	}
	version := vc.next()
	if i != 0 {
		sh.drop(i)
		sh.deletes++
	}
	return version, nil
}

// live finds key and returns its index if it is present and not expired;
// an expired entry is removed on the way.
func (sh *shard) live(h uint32, key string, now *nower) uint32 {
	i := sh.idx.find(&sh.sl, h, key)
	if i != 0 && sh.sl.at(i).expires != 0 && sh.sl.at(i).expired(now.get()) {
		sh.drop(i)
		sh.expirations++
		return 0
	}
	return i
}

// casHolds reports whether a check-and-set on live entry i (0 = absent)
// expecting version cas may proceed: cas 0 means "only if absent", any other
// value means "only if present at exactly that version".
func (sh *shard) casHolds(i uint32, cas uint64) bool {
	if cas == 0 {
		return i == 0
	}
	return i != 0 && sh.sl.at(i).version == cas
}

// makeRoom evicts until size more bytes fit in the budget. size must not
// exceed the budget, so emptying the shard always makes room.
func (sh *shard) makeRoom(size int64) {
	if sh.budget == 0 {
		return
	}
	for sh.bytes+size > sh.budget {
		i := sh.pol.victim(&sh.sl)
		if i == 0 {
			panic("store: shard over budget with nothing to evict")
		}
		sh.forget(i)
		sh.evictions++
	}
}

// drop removes entry i from its queue, the index and the slab.
func (sh *shard) drop(i uint32) {
	sh.pol.remove(&sh.sl, i)
	sh.forget(i)
}

// forget removes entry i, already out of its queue, from the index and slab.
func (sh *shard) forget(i uint32) {
	e := sh.sl.at(i)
	sh.bytes -= e.size()
	if e.expires != 0 {
		sh.ttlKeys--
	}
	sh.idx.remove(e.hash, i)
	sh.sl.release(i)
}

// sweepBatch is how many slab slots the sweep examines per lock hold, to
// bound the pause it causes to readers of the shard.
const sweepBatch = 1024

// sweep removes the shard's expired entries and returns how many.
func (sh *shard) sweep(clock Clock) int {
	n := 0
	for from := uint32(1); ; from += sweepBatch {
		sh.mu.Lock()
		end := sh.sl.end()
		if sh.ttlKeys == 0 || from >= end {
			sh.mu.Unlock()
			return n
		}
		now := clock.Now().UnixNano()
		for i := from; i < min(end, from+sweepBatch); i++ {
			if e := sh.sl.at(i); e.queue != queueNone && e.expired(now) {
				sh.drop(i)
				sh.expirations++
				n++
			}
		}
		sh.mu.Unlock()
	}
}

// scan appends the shard's live entries with the prefix and a key after
// `after` to out.
func (sh *shard) scan(out []Entry, prefix, after string, withValue bool, now int64) []Entry {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for i, end := uint32(1), sh.sl.end(); i < end; i++ {
		e := sh.sl.at(i)
		if e.queue == queueNone || e.expired(now) || !strings.HasPrefix(e.key, prefix) || e.key <= after {
			continue
		}
		out = append(out, e.public(withValue))
	}
	return out
}

// stats adds the shard's counters to st.
func (sh *shard) stats(st *Stats) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st.Keys += int64(sh.sl.used)
	st.Bytes += sh.bytes
	st.Hits += sh.hits
	st.Misses += sh.misses
	st.Sets += sh.sets
	st.Deletes += sh.deletes
	st.Evictions += sh.evictions
	st.Expirations += sh.expirations
}

// dropMatching removes the shard's entries whose key matches and returns how
// many, holding the lock for at most sweepBatch slots at a time.
func (sh *shard) dropMatching(match func(key string) bool) int {
	n := 0
	for from := uint32(1); ; from += sweepBatch {
		sh.mu.Lock()
		end := sh.sl.end()
		if from >= end {
			sh.mu.Unlock()
			return n
		}
		for i := from; i < min(end, from+sweepBatch); i++ {
			if e := sh.sl.at(i); e.queue != queueNone && match(e.key) {
				sh.drop(i)
				n++
			}
		}
		sh.mu.Unlock()
	}
}
