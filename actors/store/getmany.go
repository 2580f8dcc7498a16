package store

import (
	"hash/maphash"
	"slices"
	"sync"
)

// GetMany is Get of many keys at once: a batch of reads that takes each
// shard's lock once, however many of the keys live there, instead of once
// per key. Its outcome is that of Get called for each key in turn — the
// same entries, the same hits, misses and expirations counted, the same
// S3-FIFO access bookkeeping (a key read twice is counted twice) — with
// the clock read at most once for the whole batch.
//
// out must have room for len(keys) entries: out[i] becomes key i's live
// entry, or, when the key is absent, deleted or expired, the zero Entry
// with Key set (Version 0: a stored entry's is never 0). The values are
// appended to buf, and each out[i].Value is the part of the returned
// buffer that holds key i's value (nil when empty), capped so that an
// append to it cannot reach the next value. When buf has to grow, the
// values appended before stay in the older array: they remain valid, and
// the returned buffer holds the later ones.
//
// Why it is faster than as many Gets, besides the locks: within one hold
// of a shard's lock the lookups of its keys overlap their cache misses
// (see shard.getMany), where Get's lock, an atomic instruction, waits for
// every earlier load before the next key's can start.
func (s *Store) GetMany(keys []string, out []Entry, buf []byte) []byte {
	if len(keys) == 0 {
		return buf
	}
	out = out[:len(keys)] // panics when out is too short, before any lock is taken
	sc := manyScratches.Get().(*manyScratch)
	sc.order, sc.hash = sc.order[:0], sc.hash[:0]
	for i, k := range keys {
		h := maphash.String(s.seed, k)
		sc.order = append(sc.order, (h&s.mask)<<32|uint64(i))
		sc.hash = append(sc.hash, uint32(h>>32))
	}
	// Sorted by shard, then by position in keys: a shard's keys are read in
	// the caller's order, so a key given twice sees its first read's
	// effects (an expired entry dropped, its access counted).
	slices.Sort(sc.order)
	now := nower{clock: s.clock}
	for lo := 0; lo < len(sc.order); {
		id := sc.order[lo] >> 32
		hi := lo + 1
		for hi < len(sc.order) && sc.order[hi]>>32 == id {
			hi++
		}
		buf = s.shards[id].getMany(keys, sc.hash, sc.order[lo:hi], out, buf, &now)
		lo = hi
	}
	if cap(sc.order) <= maxManyScratch {
		manyScratches.Put(sc)
	}
	return buf
}

// manyScratch is GetMany's working memory, pooled: each key's shard and
// position (shard<<32 | position), and the 32-bit hash used inside its
// shard, by position.
type manyScratch struct {
	order []uint64
	hash  []uint32
}

var manyScratches = sync.Pool{New: func() any { return new(manyScratch) }}

// maxManyScratch is the largest batch whose scratch goes back to the pool.
const maxManyScratch = 4096

// getMany reads, under one hold of the lock, the keys at the positions in
// order (the low 32 bits of each; all of them keys of this shard, hashed
// into hash), as lookupInto would one after another: see Store.GetMany.
//
// Before the lookups proper it touches, for every key, the index slot it
// would probe first, then the entry record that slot names: loads that do
// not depend on one another, so the processor has all of them in flight
// at once, and the lookups that follow find their lines in the cache
// instead of waiting for each miss in turn.
func (sh *shard) getMany(keys []string, hash []uint32, order []uint64, out []Entry, buf []byte, now *nower) []byte {
	sh.mu.Lock()
	if len(order) > 1 && sh.idx.n > 0 {
		sh.warm(hash, order)
	}
	for _, o := range order {
		p := uint32(o)
		key := keys[p]
		i := sh.idx.find(&sh.sl, hash[p], key)
		if i == 0 {
			sh.misses++
			out[p] = Entry{Key: key}
			continue
		}
		e := sh.sl.at(i)
		if e.tomb() {
			sh.misses++
			out[p] = Entry{Key: key}
			continue
		}
		if e.expires != 0 && e.expired(now.get()) {
			sh.report(i, GoneExpired)
			sh.drop(i)
			sh.expirations++
			sh.misses++
			out[p] = Entry{Key: key}
			continue
		}
		sh.pol.touch(e)
		sh.hits++
		out[p] = Entry{Key: key, Version: e.version, Created: e.created, Flags: sh.flags(i, e), Expires: e.expires}
		if e.vlen != 0 {
			start := len(buf)
			buf = sh.sl.appendValue(buf, e)
			out[p].Value = buf[start:len(buf):len(buf)]
		}
	}
	sh.mu.Unlock()
	return buf
}

// warm loads, for each key of order, its home slot's control word, then
// the entry record of each home slot whose tag matches, then the first
// byte of that entry's key; it changes nothing but sh.warmed, where what
// it read is summed only so that the compiler keeps the loads.
func (sh *shard) warm(hash []uint32, order []uint64) {
	x := &sh.idx
	var sum uint32
	for _, o := range order {
		sum += uint32(x.ctrl(x.home(hash[uint32(o)])))
	}
	for _, o := range order {
		h := hash[uint32(o)]
		p := x.home(h)
		if x.ctrl(p) == ctrlOf(h, 0) {
			sum += sh.sl.at(x.slot(p)).vlen
		}
	}
	for _, o := range order {
		h := hash[uint32(o)]
		p := x.home(h)
		if x.ctrl(p) == ctrlOf(h, 0) {
			if e := sh.sl.at(x.slot(p)); e.loc != 0 {
				sum += uint32(sh.sl.data.view(e.loc, 1)[0])
			}
		}
	}
	sh.warmed = sum
}
