package store

import (
	"fmt"
	"testing"
	"time"
)

// checkInvariants verifies every shard's internal consistency: queues, index,
// slab, byte accounting, TTL count and the budget.
func checkInvariants(t *testing.T, s *Store) {
	t.Helper()
	for n := range s.shards {
		sh := &s.shards[n]
		sh.mu.Lock()
		err := sh.check()
		sh.mu.Unlock()
		if err != nil {
			t.Fatalf("shard %d: %v", n, err)
		}
	}
}

func (sh *shard) check() error {
	seen := map[uint32]bool{}
	var bytes int64
	walk := func(q *fifo, id uint8) error {
		var n int
		var b int64
		prev := uint32(0)
		for i := q.head; i != 0; i = sh.sl.at(i).next {
			e := sh.sl.at(i)
			if e.queue != id {
				return fmt.Errorf("entry %q in queue %d says queue %d", sh.sl.key(e), id, e.queue)
			}
			if e.prev != prev {
				return fmt.Errorf("entry %q: prev %d, want %d", sh.sl.key(e), e.prev, prev)
			}
			if seen[i] {
				return fmt.Errorf("entry %q queued twice", sh.sl.key(e))
			}
			seen[i] = true
			n++
			b += e.size()
			prev = i
		}
		if q.tail != prev {
			return fmt.Errorf("queue %d: tail %d, want %d", id, q.tail, prev)
		}
		if n != q.n || b != q.bytes {
			return fmt.Errorf("queue %d: counts n=%d bytes=%d, walked n=%d bytes=%d", id, q.n, q.bytes, n, b)
		}
		bytes += b
		return nil
	}
	if err := walk(&sh.pol.small, queueSmall); err != nil {
		return err
	}
	if err := walk(&sh.pol.main, queueMain); err != nil {
		return err
	}
	if err := walk(&sh.pol.pinned, queuePinned); err != nil {
		return err
	}
	if err := walk(&sh.tombs, queueTomb); err != nil {
		return err
	}
	if len(seen) != sh.sl.used || sh.idx.n != sh.sl.used {
		return fmt.Errorf("queued %d, slab used %d, index %d", len(seen), sh.sl.used, sh.idx.n)
	}
	if bytes != sh.bytes {
		return fmt.Errorf("accounted %d bytes, queues hold %d", sh.bytes, bytes)
	}
	if sh.budget > 0 && sh.bytes > sh.budget {
		return fmt.Errorf("%d bytes over a budget of %d", sh.bytes, sh.budget)
	}
	if err := sh.idx.check(&sh.sl); err != nil {
		return err
	}
	ttl, wide := 0, 0
	var blocks int64 // arena bytes the entries' blocks take
	for i, end := uint32(1), sh.sl.end(); i < end; i++ {
		e := sh.sl.at(i)
		if e.queue == queueNone {
			if seen[i] {
				return fmt.Errorf("free slot %d is queued", i)
			}
			continue
		}
		if !seen[i] {
			return fmt.Errorf("entry %q in no queue", sh.sl.key(e))
		}
		if got := sh.idx.find(&sh.sl, e.hash, sh.sl.key(e)); got != i {
			return fmt.Errorf("index finds %q at %d, want %d", sh.sl.key(e), got, i)
		}
		if e.version == 0 || e.created == 0 || e.created > e.version {
			return fmt.Errorf("entry %q: version %d created %d", sh.sl.key(e), e.version, e.created)
		}
		if e.loc == 0 {
			return fmt.Errorf("entry %q: no block in the arena", sh.sl.key(e))
		}
		blocks += int64(blockSize(e.keyLen() + e.valueLen()))
		if e.hasWideFlags() {
			wide++
		}
		if _, ok := sh.flagsHi[i]; ok != e.hasWideFlags() {
			return fmt.Errorf("entry %q: wide flags bit %v, high half stored %v", sh.sl.key(e), e.hasWideFlags(), ok)
		}
		if e.tomb() {
			if e.vlen != 0 || sh.flags(i, e) != 0 || e.expires == 0 {
				return fmt.Errorf("tombstone %q: value %d bytes, flags %d, removal time %d", sh.sl.key(e), e.vlen, sh.flags(i, e), e.expires)
			}
			continue
		}
		if e.expires != 0 {
			ttl++
		}
	}
	if ttl != sh.ttlKeys {
		return fmt.Errorf("ttlKeys %d, counted %d", sh.ttlKeys, ttl)
	}
	if wide != len(sh.flagsHi) {
		return fmt.Errorf("%d entries with wide flags, %d high halves stored", wide, len(sh.flagsHi))
	}
	if blocks != sh.sl.data.used {
		return fmt.Errorf("entries' blocks take %d bytes, the arena has %d in use", blocks, sh.sl.data.used)
	}
	return nil
}

// check verifies the index against the slab: every occupied slot holds a
// queued entry with its tag, its distance from home and its arena location, the count is right,
// and the Robin Hood order holds (a slot is at most one farther from its
// home than the slot before it, so lookups may stop early and deletes may
// shift back).
func (x *index) check(sl *slab) error {
	n, prev := 0, uint16(0)
	for p := range len(x.b) / slotBytes {
		c, i := x.load(p)
		if (c == 0) != (i == 0) {
			return fmt.Errorf("slot %d: control %#x, slab index %d", p, c, i)
		}
		if dist1(c) > dist1(prev)+1 {
			return fmt.Errorf("slot %d: distance %d after a slot at distance %d", p, dist1(c)-1, dist1(prev)-1)
		}
		prev = c
		if i == 0 {
			continue
		}
		n++
		e := sl.at(i)
		if d := p - x.home(e.hash); e.queue == queueNone || d < 0 || d > maxDist || c != ctrlOf(e.hash, d) {
			return fmt.Errorf("slot %d: control %#x for entry %q (queue %d) at distance %d", p, c, sl.key(e), e.queue, d)
		}
		if l := x.loc(p); l != packLoc(e.loc) {
			return fmt.Errorf("slot %d: location %#x, entry %q's is %#x (packed %#x)", p, l, sl.key(e), e.loc, packLoc(e.loc))
		}
	}
	if n != x.n {
		return fmt.Errorf("index counts %d entries, holds %d", x.n, n)
	}
	return nil
}

// manualTicker replaces a store's sweep ticker with a channel the test drives.
func manualTicker(s *Store) chan time.Time {
	c := make(chan time.Time)
	s.newTicker = func(time.Duration) (<-chan time.Time, func()) { return c, func() {} }
	return c
}
