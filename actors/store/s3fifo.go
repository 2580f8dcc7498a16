package store

import (
	"math/bits"
	"unsafe"
)

// S3-FIFO eviction (Yang et al., "FIFO queues are all you need for cache
// eviction", SOSP 2023), per shard and by bytes:
//
//   - a small FIFO takes new keys and holds about smallShare of the budget;
//   - a main FIFO takes keys that proved useful;
//   - a ghost FIFO remembers fingerprints of keys recently evicted from small;
//   - each entry has a 2-bit access counter (entry.freq, saturating at maxFreq).
//
// A new key goes to main if the ghost remembers it, else to small. To evict:
// if small holds at least its share (or main is empty), take small's oldest
// entry: accessed at least promoteFreq times since insertion, it moves to
// main; otherwise it is evicted and remembered by the ghost. Else take main's
// oldest entry: accessed (freq > 0), it is reinserted with freq-1; otherwise
// it is evicted. One-hit wonders thus leave through small quickly, without
// pushing out the keys that are used again and again.
//
// This file is pure logic over a shard's slab: no locking (the shard's lock
// covers it), no clocks, no allocation except the ghost's growth.

const (
	maxFreq     = 3  // 2-bit counter
	promoteFreq = 1  // accesses while in small that earn a move to main
	smallShare  = 10 // percent of the budget for the small queue
)

// Queue ids kept in entry.queue.
const (
	queueNone   uint8 = iota // free slab slot
	queueSmall               // in the small FIFO
	queueMain                // in the main FIFO
	queueTomb                // a tombstone, in its shard's tombstone FIFO (not the policy's)
	queuePinned              // never evicted: in the policy's pinned FIFO (pin.go)
)

// fifo is a queue of slab entries linked through entry.prev/next: new entries
// at head, the oldest at tail.
type fifo struct {
	head, tail uint32 // slab indices; 0 = empty
	n          int    // entries
	bytes      int64  // accounted bytes of its entries
}

func (q *fifo) pushHead(sl *slab, i uint32) {
	e := sl.at(i)
	e.prev, e.next = 0, q.head
	if q.head != 0 {
		sl.at(q.head).prev = i
	} else {
		q.tail = i
	}
	q.head = i
	q.n++
	q.bytes += e.size()
}

func (q *fifo) unlink(sl *slab, i uint32) {
	e := sl.at(i)
	if e.prev != 0 {
		sl.at(e.prev).next = e.next
	} else {
		q.head = e.next
	}
	if e.next != 0 {
		sl.at(e.next).prev = e.prev
	} else {
		q.tail = e.prev
	}
	e.prev, e.next = 0, 0
	q.n--
	q.bytes -= e.size()
}

// ghost remembers 16-bit fingerprints of recently evicted keys, about as
// many as the shard has entries. It is a table of 4-slot buckets, each a
// little FIFO (slot 0 newest): an approximate, allocation-free FIFO at 2
// bytes per remembered key. A key's bucket comes from the high bits of its
// hash, its fingerprint from bits 1..15 (bit 0 is set, as 0 marks an empty
// slot), so the two are independent while the table has at most 2^16
// buckets (2^18 keys): a new key falsely matches one of a bucket's 4
// fingerprints about once in 8192 lookups, and that only sends it to main
// instead of small. Beyond that they share bits: with 2^b buckets, a false
// match is 4 in 2^(31-b).
type ghost struct {
	slots []uint16 // 0 = empty
	shift uint8    // a hash's bucket is h>>shift: the table has 2^(32-shift) buckets
}

const ghostWays = 4

// fingerprint makes 0 (the empty mark) impossible.
func fingerprint(h uint32) uint16 { return uint16(h) | 1 }

func (g *ghost) bucket(h uint32) []uint16 {
	b := int(uint64(h) >> g.shift)
	return g.slots[b*ghostWays : b*ghostWays+ghostWays]
}

// add remembers h, forgetting the oldest fingerprint of its bucket.
func (g *ghost) add(h uint32) {
	if len(g.slots) == 0 {
		return
	}
	b := g.bucket(h)
	copy(b[1:], b[:ghostWays-1])
	b[0] = fingerprint(h)
}

// take reports whether h is remembered, and forgets it.
func (g *ghost) take(h uint32) bool {
	if len(g.slots) == 0 {
		return false
	}
	fp := fingerprint(h)
	b := g.bucket(h)
	for j, v := range b {
		if v == fp {
			copy(b[j:], b[j+1:])
			b[ghostWays-1] = 0
			return true
		}
	}
	return false
}

// fit grows the ghost to remember at least n keys (a power of two slots,
// at least 64). A fingerprint does not say which of the new buckets its key
// belongs to, so each old bucket is copied, in order, to all the buckets it
// splits into: the right one keeps remembering the key, the others hold a
// stale copy until newer keys push it out.
func (g *ghost) fit(n int, mem *offheap) {
	if n <= len(g.slots) {
		return
	}
	size := max(len(g.slots), 64)
	for size < n {
		size *= 2
	}
	old, oldShift := g.slots, g.shift
	g.slots = allocUint16s(mem, size)
	defer freeUint16s(mem, old)
	g.shift = uint8(32 - bits.Len(uint(size/ghostWays)-1))
	if len(old) == 0 {
		return
	}
	split := ghostWays << (oldShift - g.shift) // slots of new buckets per old bucket
	for b := 0; b < len(old); b += ghostWays {
		for c := b / ghostWays * split; c < (b/ghostWays+1)*split; c += ghostWays {
			copy(g.slots[c:c+ghostWays], old[b:b+ghostWays])
		}
	}
}

// s3fifo is one shard's eviction policy.
type s3fifo struct {
	small, main fifo
	ghost       ghost
	smallTarget int64  // bytes small may hold before it is evicted from first
	remember    bool   // keep a ghost (only bounded shards evict)
	pinned      fifo   // entries never evicted (pin.go)
	pin         string // key prefix of the pinned entries; "" = none
}

// newS3FIFO makes a policy for a shard of budget bytes (0 = unlimited).
func newS3FIFO(budget int64) s3fifo {
	return s3fifo{smallTarget: budget * smallShare / 100, remember: budget > 0}
}

// insert queues a new entry: into main if the ghost remembers its key, else
// into small.
func (p *s3fifo) insert(sl *slab, i uint32) {
	e := sl.at(i)
	e.setFreq(0)
	if p.pins(sl, e) {
		e.queue = queuePinned
		p.pinned.pushHead(sl, i)
		return
	}
	if p.ghost.take(e.hash) {
		e.queue = queueMain
		p.main.pushHead(sl, i)
	} else {
		e.queue = queueSmall
		p.small.pushHead(sl, i)
	}
	if p.remember {
		p.ghost.fit(p.small.n+p.main.n, sl.mem)
	}
}

// requeue puts an entry that was taken out with remove back at the head of
// queue q, keeping its counter.
func (p *s3fifo) requeue(sl *slab, i uint32, q uint8) {
	sl.at(i).queue = q
	p.queue(q).pushHead(sl, i)
}

// touch records an access.
func (p *s3fifo) touch(e *entry) {
	if f := e.freq(); f < maxFreq {
		e.setFreq(f + 1)
	}
}

// resized records that entry e's accounted size changed by delta bytes.
func (p *s3fifo) resized(e *entry, delta int64) { p.queue(e.queue).bytes += delta }

// remove takes an entry out of its queue (delete or expiry: no ghost) and
// returns the queue it was in.
func (p *s3fifo) remove(sl *slab, i uint32) uint8 {
	e := sl.at(i)
	q := e.queue
	p.queue(q).unlink(sl, i)
	e.queue = queueNone
	return q
}

// victim picks the next entry to evict, takes it out of its queue and
// returns its index; 0 when both queues are empty. Entries it passes over are
// promoted from small to main or reinserted into main with a lower counter.
func (p *s3fifo) victim(sl *slab) uint32 {
	if p.small.n > 0 && (p.small.bytes >= p.smallTarget || p.main.n == 0) {
		if i := p.evictSmall(sl); i != 0 {
			return i
		}
	}
	return p.evictMain(sl)
}

// evictSmall walks small from its oldest entry: entries accessed often
// enough move to main, the first other one is evicted (and remembered by the
// ghost). 0 if small empties first.
func (p *s3fifo) evictSmall(sl *slab) uint32 {
	for p.small.n > 0 {
		i := p.small.tail
		e := sl.at(i)
		p.small.unlink(sl, i)
		if e.freq() >= promoteFreq {
			e.setFreq(0)
			e.queue = queueMain
			p.main.pushHead(sl, i)
			continue
		}
		e.queue = queueNone
		if p.remember {
			p.ghost.add(e.hash)
		}
		return i
	}
	return 0
}

// evictMain walks main from its oldest entry: accessed entries go round
// again with their counter decremented, the first other one is evicted.
func (p *s3fifo) evictMain(sl *slab) uint32 {
	for p.main.n > 0 {
		i := p.main.tail
		e := sl.at(i)
		p.main.unlink(sl, i)
		if f := e.freq(); f > 0 {
			e.setFreq(f - 1)
			p.main.pushHead(sl, i)
			continue
		}
		e.queue = queueNone
		return i
	}
	return 0
}

func (p *s3fifo) queue(q uint8) *fifo {
	switch q {
	case queueSmall:
		return &p.small
	case queueMain:
		return &p.main
	case queuePinned:
		return &p.pinned
	}
	panic("store: entry in no queue")
}

// allocUint16s returns n zeroed uint16s from mem.
func allocUint16s(mem *offheap, n int) []uint16 {
	b := mem.alloc(2 * n)
	return unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// freeUint16s gives back s, which allocUint16s returned.
func freeUint16s(mem *offheap, s []uint16) {
	if len(s) > 0 {
		mem.free(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 2*len(s)))
	}
}
