package store

// index maps a key to its slab index: an open-addressing table with linear
// probing and backward-shift deletion. Each 8-byte slot holds the key's
// 32-bit hash (upper half) and its slab index (lower half; 0 = empty slot), so
// probes compare hashes without touching the slab, and growth rehashes
// without touching it either. Not safe for concurrent use.
type index struct {
	slots []uint64
	n     int // occupied slots
}

// find returns the slab index of key, or 0.
func (x *index) find(sl *slab, h uint32, key string) uint32 {
	if x.n == 0 {
		return 0
	}
	mask := uint32(len(x.slots) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		s := x.slots[p]
		if s == 0 {
			return 0
		}
		if uint32(s>>32) == h {
			if i := uint32(s); sl.at(i).key == key {
				return i
			}
		}
	}
}

// insert adds slab index i under hash h; the key must not be present.
func (x *index) insert(h, i uint32) {
	if (x.n+1)*4 > len(x.slots)*3 { // keep the load at most 3/4
		x.grow()
	}
	x.put(uint64(h)<<32 | uint64(i))
	x.n++
}

func (x *index) put(s uint64) {
	mask := uint32(len(x.slots) - 1)
	p := uint32(s>>32) & mask
	for x.slots[p] != 0 {
		p = (p + 1) & mask
	}
	x.slots[p] = s
}

func (x *index) grow() {
	old := x.slots
	x.slots = make([]uint64, max(2*len(old), 8))
	for _, s := range old {
		if s != 0 {
			x.put(s)
		}
	}
}

// remove deletes slab index i stored under hash h. Later entries of the probe
// run are shifted back so that no tombstones are needed.
func (x *index) remove(h, i uint32) {
	mask := uint32(len(x.slots) - 1)
	want := uint64(h)<<32 | uint64(i)
	p := h & mask
	for x.slots[p] != want {
		if x.slots[p] == 0 {
			panic("store: index lost an entry")
		}
		p = (p + 1) & mask
	}
	hole := p
	for q := (hole + 1) & mask; x.slots[q] != 0; q = (q + 1) & mask {
		home := uint32(x.slots[q]>>32) & mask
		// Move slot q into the hole unless its home lies cyclically in (hole, q].
		if (q-home)&mask >= (q-hole)&mask {
			x.slots[hole] = x.slots[q]
			hole = q
		}
	}
	x.slots[hole] = 0
	x.n--
}
