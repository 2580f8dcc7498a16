package store

import (
	"cmp"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
)

// shard is one lock's worth of the store: an index from key to slab entry,
// the slab, the S3-FIFO queues, the tombstones and the shard's counters, all
// guarded by mu.
type shard struct {
	mu      sync.Mutex
	idx     index
	sl      slab
	pol     s3fifo
	tombs   fifo              // tombstones, newest at head: the sweep and eviction take them from the tail
	tombTTL time.Duration     // how long a tombstone is kept; 0 = deletes leave none
	budget  int64             // bytes this shard may account, live entries and tombstones; 0 = unlimited
	bytes   int64             // accounted bytes of its entries and tombstones
	ttlKeys int               // live entries with an expiry, so the sweep can skip shards without any
	flagsHi map[uint32]uint32 // the high half of flags wider than 32 bits, by slab index (entry.bits&wideFlags); nil until needed
	gone    *goneHook         // the store's NotifyGone callback (gone.go); nil in shards made alone
	evict   *evictHooks       // the store's SetEvictHooks hooks (evict.go); nil in shards made alone

	hits, misses, sets, deletes, evictions, expirations int64

	warmed uint32 // getMany's warm-up writes what it read here, so that its loads are kept

	_ [64]byte // keep the next shard's lock off this shard's last cache line
}

// newShard makes a shard of budget bytes (0 = unlimited) that keeps no
// tombstones until its tombTTL is set.
func newShard(budget int64) shard {
	return shard{budget: budget, pol: newS3FIFO(budget), sl: newSlab(&offheap{})}
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
	e, _, err := sh.lookup(h, key, clock)
	return e, err
}

// lookup returns the live entry of key; for an absent key, ErrNotFound and
// the version of its tombstone (0 = none).
func (sh *shard) lookup(h uint32, key string, clock Clock) (Entry, uint64, error) {
	return sh.lookupInto(h, key, clock, nil)
}

// lookupInto is lookup that appends the value to buf (nil = a new slice of
// the value's length; an empty value is nil).
func (sh *shard) lookupInto(h uint32, key string, clock Clock, buf []byte) (Entry, uint64, error) {
	sh.mu.Lock()
	i := sh.idx.find(&sh.sl, h, key)
	if i == 0 {
		sh.misses++
		sh.mu.Unlock()
		return Entry{}, 0, ErrNotFound
	}
	e := sh.sl.at(i)
	if e.tomb() {
		deleted := e.version
		sh.misses++
		sh.mu.Unlock()
		return Entry{}, deleted, ErrNotFound
	}
	if e.expires != 0 && e.expired(clock.Now().UnixNano()) {
		sh.report(i, GoneExpired)
		sh.drop(i)
		sh.expirations++
		sh.misses++
		sh.mu.Unlock()
		return Entry{}, 0, ErrNotFound
	}
	sh.pol.touch(e)
	sh.hits++
	out := sh.sl.public(e, key, buf == nil, sh.flagsHigh(i, e))
	if buf != nil {
		out.Value = sh.sl.appendValue(buf, e)
	}
	sh.mu.Unlock()
	return out, 0, nil
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
	w := write{key: req.Key, value: req.Value, flags: req.Flags, version: vc.next(), size: size}
	if req.KeepTTL && i != 0 && !sh.sl.at(i).tomb() {
		w.expires = sh.sl.at(i).expires
	} else if req.TTL > 0 {
		w.expires = now.get() + int64(req.TTL)
		if w.expires < 0 { // overflow: as good as never
			w.expires = math.MaxInt64
		}
	}
	i = sh.put(h, i, &w)
	e := sh.sl.at(i)
	out := sh.sl.public(e, req.Key, false, sh.flagsHigh(i, e))
	if len(req.Value) > 0 {
		out.Value = req.Value // as written: the store keeps its own copy
	}
	return out, nil
}

// write is a key's new live state, as set and apply store it.
type write struct {
	key     string
	value   []byte
	flags   uint64
	version uint64
	created uint64 // 0 = Set's rule: this write's version when it creates the key, else the key's Created is kept
	expires int64  // absolute Unix nanoseconds; 0 = never
	size    int64  // accounted bytes: len(key)+len(value)+EntryOverhead, within the budget
}

// put stores w under hash h in slot i, found by live: 0 when the key is
// absent, else its live entry or its tombstone. It makes room, keeps the
// accounting, counts a set and returns the entry's slot.
func (sh *shard) put(h, i uint32, w *write) uint32 {
	if i == 0 { // a new key
		sh.makeRoom(w.size)
		i = sh.sl.alloc()
		e := sh.sl.at(i)
		*e = entry{version: w.version, created: cmp.Or(w.created, w.version), expires: w.expires, hash: h}
		sh.sl.setKey(e, w.key, w.value)
		sh.setFlags(i, e, w.flags)
		sh.idx.insert(&sh.sl, h, i)
		sh.pol.insert(&sh.sl, i)
		sh.bytes += w.size
		if w.expires != 0 {
			sh.ttlKeys++
		}
		sh.sets++
		return i
	}
	if sh.sl.at(i).tomb() { // a deleted key comes back, in its tombstone's slot
		sh.revive(i, w)
		return i
	}

	e := sh.sl.at(i)
	old := e.size()
	if sh.budget > 0 && sh.bytes-old+w.size > sh.budget {
		// Take the entry out of its queue so that making room cannot evict it.
		q := sh.pol.remove(&sh.sl, i)
		sh.bytes -= old
		sh.makeRoom(w.size)
		e = sh.sl.at(i)
		sh.setValue(i, e, w.value)
		sh.pol.requeue(&sh.sl, i, q)
		sh.bytes += w.size
	} else {
		sh.setValue(i, e, w.value)
		sh.pol.resized(e, w.size-old)
		sh.bytes += w.size - old
	}
	if (e.expires != 0) != (w.expires != 0) {
		if w.expires != 0 {
			sh.ttlKeys++
		} else {
			sh.ttlKeys--
		}
	}
	e.version, e.expires = w.version, w.expires
	if w.created != 0 {
		e.created = w.created
	}
	sh.setFlags(i, e, w.flags)
	sh.pol.touch(e)
	sh.sets++
	return i
}

// revive turns tombstone i into the live entry w: the key is created anew
// (by Set's rule, Created = w.version), in the tombstone's slot.
func (sh *shard) revive(i uint32, w *write) {
	sh.tombs.unlink(&sh.sl, i)
	sh.bytes -= sh.sl.at(i).size()
	sh.sl.at(i).queue = queueNone // out of every queue, so making room cannot take it
	sh.makeRoom(w.size)
	e := sh.sl.at(i)
	sh.setValue(i, e, w.value)
	e.version, e.created, e.expires = w.version, cmp.Or(w.created, w.version), w.expires
	sh.setFlags(i, e, w.flags)
	sh.pol.insert(&sh.sl, i)
	sh.bytes += w.size
	if w.expires != 0 {
		sh.ttlKeys++
	}
	sh.sets++
}

// del deletes key under hash h and returns the delete's version and whether
// a live entry was deleted.
func (sh *shard) del(h uint32, req *DeleteRequest, vc *hlc) (uint64, bool, error) {
	now := nower{clock: vc.clock}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.live(h, req.Key, &now)
	if req.CheckCAS && !sh.casHolds(i, req.CAS) {
		return 0, false, ErrCASMismatch
	}
	version := vc.next()
	if i == 0 || sh.sl.at(i).tomb() {
		return version, false, nil
	}
	if sh.tombTTL > 0 {
		sh.bury(i, version, now.get())
	} else {
		sh.drop(i)
	}
	sh.deletes++
	return version, true, nil
}

// bury turns live entry i into the tombstone of a delete at version, made at
// now: no value, no flags, kept until now+tombTTL.
func (sh *shard) bury(i uint32, version uint64, now int64) {
	sh.pol.remove(&sh.sl, i)
	e := sh.sl.at(i)
	sh.bytes -= e.size()
	if e.expires != 0 {
		sh.ttlKeys--
	}
	sh.setValue(i, e, nil)
	sh.setFlags(i, e, 0)
	e.version, e.expires = version, sh.tombUntil(now)
	e.setFreq(0)
	e.queue = queueTomb
	sh.tombs.pushHead(&sh.sl, i)
	sh.bytes += e.size()
}

// tombUntil is when a tombstone made at now may be removed.
func (sh *shard) tombUntil(now int64) int64 {
	until := now + int64(sh.tombTTL)
	if until < now { // overflow
		until = math.MaxInt64
	}
	return until
}

// live finds key and returns its index if it is present and not expired, or
// is a tombstone; an expired entry is removed on the way.
func (sh *shard) live(h uint32, key string, now *nower) uint32 {
	i := sh.idx.find(&sh.sl, h, key)
	if i == 0 {
		return 0
	}
	if e := sh.sl.at(i); !e.tomb() && e.expires != 0 && e.expired(now.get()) {
		sh.report(i, GoneExpired)
		sh.drop(i)
		sh.expirations++
		return 0
	}
	return i
}

// casHolds reports whether a check-and-set on entry i (0 = absent; a
// tombstone is absent too) expecting version cas may proceed: cas 0 means
// "only if absent", any other value means "only if present at exactly that
// version".
func (sh *shard) casHolds(i uint32, cas uint64) bool {
	present := i != 0 && !sh.sl.at(i).tomb()
	if cas == 0 {
		return !present
	}
	return present && sh.sl.at(i).version == cas
}

// makeRoom evicts until size more bytes fit in the budget: the oldest
// tombstones first, then live entries as S3-FIFO picks them. size must not
// exceed the budget, so emptying the shard always makes room.
func (sh *shard) makeRoom(size int64) {
	if sh.budget == 0 {
		return
	}
	h, spared := sh.hooks(), 0
	for sh.bytes+size > sh.budget {
		if i := sh.tombs.tail; i != 0 {
			sh.evicted(h, i)
			sh.drop(i)
			continue
		}
		i := sh.pol.victim(&sh.sl)
		if i == 0 && sh.pol.pinned.n > 0 {
			return // what is left is pinned: over budget by pinned bytes (pin.go)
		}
		if i == 0 {
			panic("store: shard over budget with nothing to evict")
		}
		if sh.spare(h, i, &spared) {
			continue // a copy its primary evicts (evict.go)
		}
		spared = 0
		sh.evicted(h, i)
		sh.report(i, GoneEvicted)
		sh.forget(i)
		sh.evictions++
	}
}

// drop removes entry i, live or tombstone, from its queue, the index and the
// slab.
func (sh *shard) drop(i uint32) {
	if sh.sl.at(i).tomb() {
		sh.tombs.unlink(&sh.sl, i)
	} else {
		sh.pol.remove(&sh.sl, i)
	}
	sh.forget(i)
}

// forget removes entry i, already out of its queue (a tombstone keeps
// queueTomb until here), from the index and slab.
func (sh *shard) forget(i uint32) {
	e := sh.sl.at(i)
	sh.bytes -= e.size()
	if e.expires != 0 && !e.tomb() {
		sh.ttlKeys--
	}
	if e.hasWideFlags() {
		delete(sh.flagsHi, i)
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
			if e := sh.sl.at(i); e.queue != queueNone && !e.tomb() && e.expired(now) {
				sh.report(i, GoneExpired)
				sh.drop(i)
				sh.expirations++
				n++
			}
		}
		sh.mu.Unlock()
	}
}

// reap removes the shard's tombstones due at now, oldest first, holding the
// lock for at most sweepBatch of them at a time, and returns how many.
func (sh *shard) reap(now int64) int {
	n := 0
	for {
		sh.mu.Lock()
		for range sweepBatch {
			i := sh.tombs.tail
			if i == 0 || !sh.sl.at(i).expired(now) {
				sh.mu.Unlock()
				return n
			}
			sh.drop(i)
			n++
		}
		sh.mu.Unlock()
	}
}

// maxVersion is the highest version of the shard's live entries and
// tombstones whose key has the prefix; 0 = none.
func (sh *shard) maxVersion(prefix string, now int64) uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var top uint64
	for i, end := uint32(1), sh.sl.end(); i < end; i++ {
		e := sh.sl.at(i)
		if e.queue == queueNone || e.version <= top || (!e.tomb() && e.expired(now)) || !strings.HasPrefix(sh.sl.key(e), prefix) {
			continue
		}
		top = e.version
	}
	return top
}

// scan appends the shard's live entries with the prefix and a key after
// `after` to out.
func (sh *shard) scan(out []Entry, prefix, after string, withValue bool, now int64) []Entry {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for i, end := uint32(1), sh.sl.end(); i < end; i++ {
		e := sh.sl.at(i)
		if e.queue == queueNone || e.tomb() || e.expired(now) {
			continue
		}
		if k := sh.sl.key(e); !strings.HasPrefix(k, prefix) || k <= after {
			continue
		}
		out = append(out, sh.sl.public(e, "", withValue, sh.flagsHigh(i, e)))
	}
	return out
}

// stats adds the shard's counters to st.
func (sh *shard) stats(st *Stats) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st.Keys += int64(sh.sl.used - sh.tombs.n - sh.pol.pinned.n)
	st.Pinned += int64(sh.pol.pinned.n)
	st.Bytes += sh.bytes - sh.tombs.bytes
	st.Tombstones += int64(sh.tombs.n)
	st.TombstoneBytes += sh.tombs.bytes
	st.Hits += sh.hits
	st.Misses += sh.misses
	st.Sets += sh.sets
	st.Deletes += sh.deletes
	st.Evictions += sh.evictions
	st.Expirations += sh.expirations
}

// dropMatching removes the shard's entries whose key matches, tombstones
// included, and returns how many live entries it removed, holding the lock
// for at most sweepBatch slots at a time.
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
			if e := sh.sl.at(i); e.queue != queueNone && match(sh.sl.key(e)) {
				if !e.tomb() {
					n++
				}
				sh.drop(i)
			}
		}
		sh.mu.Unlock()
	}
}

// flagsHigh returns the high half of the flags of entry e at slab index i.
func (sh *shard) flagsHigh(i uint32, e *entry) uint32 {
	if !e.hasWideFlags() {
		return 0
	}
	return sh.flagsHi[i]
}

// flags returns the flags of entry e at slab index i.
func (sh *shard) flags(i uint32, e *entry) uint64 {
	return uint64(sh.flagsHigh(i, e))<<32 | uint64(e.flags)
}

// setFlags stores flags f for entry e at slab index i: the low half in the
// entry, the high half, when it is not 0, in flagsHi (the only case where a
// write may allocate: flags that do not fit in 32 bits are rare).
func (sh *shard) setFlags(i uint32, e *entry, f uint64) {
	e.flags = uint32(f)
	switch hi := uint32(f >> 32); {
	case hi != 0:
		if sh.flagsHi == nil {
			sh.flagsHi = map[uint32]uint32{}
		}
		sh.flagsHi[i] = hi
		e.bits |= wideFlags
	case e.hasWideFlags():
		delete(sh.flagsHi, i)
		e.bits &^= wideFlags
	}
}

// setValue replaces entry e's value, at slab index i, with a copy of v
// (slab.setValue), and tells the index when the block moved.
func (sh *shard) setValue(i uint32, e *entry, v []byte) {
	loc := e.loc
	sh.sl.setValue(e, v)
	if e.loc != loc {
		sh.idx.relocate(e.hash, i, e.loc)
	}
}
