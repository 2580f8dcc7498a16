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
	return s.getMany(keys, out, buf, true)
}

// getMany is GetMany, with the warm-up stages of shard.getMany on or off
// (off only to measure what they bring: BenchmarkGetManyWarm).
func (s *Store) getMany(keys []string, out []Entry, buf []byte, warm bool) []byte {
	if len(keys) == 0 {
		return buf
	}
	out = out[:len(keys)] // panics when out is too short, before any lock is taken
	sc := manyScratches.Get().(*manyScratch)
	sc.order, sc.hash = sc.order[:0], sc.hash[:0]
	sc.cand = slices.Grow(sc.cand[:0], len(keys))[:len(keys)]
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
		buf = s.shards[id].getMany(keys, sc.hash, sc.cand, sc.order[lo:hi], out, buf, &now, warm)
		lo = hi
	}
	if cap(sc.order) <= maxManyScratch {
		manyScratches.Put(sc)
	}
	return buf
}

// manyScratch is GetMany's working memory, pooled: each key's shard and
// position (shard<<32 | position), and by position the 32-bit hash used
// inside its shard and the slab index warm found for it.
type manyScratch struct {
	order []uint64
	hash  []uint32
	cand  []uint32
}

var manyScratches = sync.Pool{New: func() any { return new(manyScratch) }}

// maxManyScratch is the largest batch whose scratch goes back to the pool.
const maxManyScratch = 4096

// getMany reads, under one hold of the lock, the keys at the positions in
// order (the low 32 bits of each; all of them keys of this shard, hashed
// into hash), as lookupInto would one after another: see Store.GetMany.
//
// Before the lookups proper, warm touches what they will read, in stages
// of loads that do not depend on one another, so that the processor has
// the shard's misses in flight at once; the lookups that follow find their
// lines in the cache instead of waiting for each miss in turn. A single
// key has nothing to overlap, and skips it.
func (sh *shard) getMany(keys []string, hash []uint32, cand []uint32, order []uint64, out []Entry, buf []byte, now *nower, warm bool) []byte {
	sh.mu.Lock()
	if warm && len(order) > 1 && sh.idx.n > 0 {
		sh.warm(hash, order, cand)
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

// warm runs ahead of getMany's lookups in stages, each a loop of loads
// that do not depend on one another: every key's home slot in the index;
// then, probing from there (in lines now cached), the slab index of the
// first slot whose tag matches, which it keeps in cand, and the first line
// of its key and value block, at the slot's location; then those entry
// records (both lines of one that straddles two); then every other cache line of their blocks, up to warmLines of
// them. It changes nothing but sh.warmed, where what it read is summed only
// so that the compiler keeps the loads.
func (sh *shard) warm(hash []uint32, order []uint64, cand []uint32) {
	x := &sh.idx
	var sum uint32
	for _, o := range order {
		sum += uint32(x.ctrl(x.home(hash[uint32(o)])))
	}
	for _, o := range order {
		p := uint32(o)
		i, l := x.probe(hash[p])
		cand[p] = i
		if l != 0 {
			sum += uint32(sh.sl.data.view(unpackLoc(l), 1)[0])
		}
	}
	for _, o := range order {
		if i := cand[uint32(o)]; i != 0 {
			e := sh.sl.at(i)
			sum += uint32(e.loc) + uint32(e.bits) // the record's first and last bytes: both its lines when it straddles two
		}
	}
	for _, o := range order {
		i := cand[uint32(o)]
		if i == 0 {
			continue
		}
		e := sh.sl.at(i)
		if e.loc == 0 {
			continue
		}
		b := sh.sl.data.view(e.loc, e.keyLen()+e.valueLen())
		for off := 64; off < len(b) && off < warmLines*64; off += 64 {
			sum += uint32(b[off])
		}
		sum += uint32(b[min(len(b), warmLines*64)-1])
	}
	sh.warmed = sum
}

// warmLines is how many cache lines of a block warm touches: enough for
// small values; a longer copy streams, and the processor's own prefetcher
// keeps ahead of it.
const warmLines = 4
