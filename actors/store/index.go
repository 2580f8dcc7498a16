package store

import "encoding/binary"

// index maps a key to its slab index: an open-addressing table with linear
// probing, Robin Hood insertion and backward-shift deletion. A slot is 6
// bytes: a 2-byte control word (8 bits of the key's hash, the tag, and the
// slot's distance from the key's home slot) and the 4-byte slab index. A
// probe compares the control word, so it reads the slab index and touches
// the slab only when the tag matches (1 in 256 of the other
// entries at the same distance). Robin Hood keeps every key close to its
// home and lets a lookup for an absent key stop as soon as it meets an entry
// nearer its own home; backward shift leaves no tombstones, so probes stay
// short under any mix of inserts and deletes.
//
// A key's home slot is chosen from its 32-bit hash by multiplication, so any
// slot count works and the table grows by half, not double. Probes do not
// wrap around: maxDist+2 spare slots follow the last home slot. The slots
// hold no hash: growth reads each entry's hash from the slab, in one pass
// over the slab in memory order. Not safe for concurrent use.
type index struct {
	b     []byte // (slots+maxDist+2)*slotBytes bytes of slots
	slots int    // number of home slots
	n     int    // occupied slots
}

// slotBytes is the size of a slot: control word, then slab index, little
// endian.
const slotBytes = 6

// Load: the index grows by half when an insert would take it above its
// maximum load. A table of up to sparseSlots slots (48 KiB) is kept at most
// half full: its memory does not matter, and in a table that sits in the
// cache a lookup costs about its number of probes (each one past the first
// is a mispredicted branch). A larger one is filled up to 6/7, about 7 bytes
// per entry: there a lookup costs its cache misses, the same at either load.
const (
	sparseSlots = 8192
	maxLoadNum  = 6
	maxLoadDen  = 7
)

// full reports whether n entries are more than the index may hold.
func (x *index) full(n int) bool {
	if x.slots < sparseSlots {
		return 2*n > x.slots
	}
	return n*maxLoadDen > x.slots*maxLoadNum
}

// maxDist is the farthest a slot may be from its key's home (the control
// word's low byte holds distance+1). Robin Hood keeps distances to a few
// slots; an insert that would go past this grows the table instead. Below
// 254, so that a lookup stops by distance maxDist+1 at the latest, while
// distance+1 still fits in the byte.
const maxDist = 253

// ctrlOf is the control word of an entry with hash h at distance d from its
// home; 0 marks an empty slot.
func ctrlOf(h uint32, d int) uint16 { return uint16(uint8(h))<<8 | uint16(d+1) }

// dist1 returns distance+1 of a control word (0 for an empty slot).
func dist1(c uint16) int { return int(c & 0xff) }

// home returns the slot where a probe for hash h starts.
func (x *index) home(h uint32) int { return int(uint64(h) * uint64(x.slots) >> 32) }

// load returns slot p's control word and slab index.
func (x *index) load(p int) (uint16, uint32) { return x.ctrl(p), x.slot(p) }

// ctrl returns slot p's control word. Slots are 6 bytes, so a control word
// never straddles two cache lines, and a probe reads the slab index only
// when the control word matches.
func (x *index) ctrl(p int) uint16 { return binary.LittleEndian.Uint16(x.b[p*slotBytes:]) }

// slot returns slot p's slab index.
func (x *index) slot(p int) uint32 { return binary.LittleEndian.Uint32(x.b[p*slotBytes+2:]) }

// store sets slot p.
func (x *index) store(p int, c uint16, i uint32) {
	s := x.b[p*slotBytes : p*slotBytes+slotBytes]
	binary.LittleEndian.PutUint16(s, c)
	binary.LittleEndian.PutUint32(s[2:], i)
}

// find returns the slab index of key, or 0.
func (x *index) find(sl *slab, h uint32, key string) uint32 {
	if x.n == 0 {
		return 0
	}
	for p, want := x.home(h), ctrlOf(h, 0); ; p, want = p+1, want+1 { // one slot farther from home
		c := x.ctrl(p)
		if c == want {
			if i := x.slot(p); sl.at(i).hash == h && sl.hasKey(sl.at(i), key) {
				return i
			}
		} else if dist1(c) < dist1(want) { // empty, or nearer its home than key would be: key is absent
			return 0
		}
	}
}

// probe returns the slab index in the first slot of hash h's probe whose
// tag matches, or 0: find's candidate, without looking at the slab.
func (x *index) probe(h uint32) uint32 {
	for p, want := x.home(h), ctrlOf(h, 0); ; p, want = p+1, want+1 {
		c := x.ctrl(p)
		if c == want {
			return x.slot(p)
		}
		if dist1(c) < dist1(want) {
			return 0
		}
	}
}

// insert adds slab index i under hash h; the key must not be present. Growth
// rebuilds the index from the slab's entries that are in a queue, so i must
// not be in one yet.
func (x *index) insert(sl *slab, h, i uint32) {
	if x.full(x.n + 1) {
		x.grow(sl)
	}
	for !x.put(h, i) {
		x.grow(sl)
	}
	x.n++
}

// put places slab index i under hash h, Robin Hood style: walking from its
// home, it takes the slot of the first entry nearer its own home and carries
// that entry on. It reports false, leaving the index inconsistent (to be
// rebuilt by grow), when an entry would land more than maxDist from home.
func (x *index) put(h, i uint32) bool {
	c := ctrlOf(h, 0)
	for p := x.home(h); ; p++ {
		cur, j := x.load(p)
		if cur == 0 {
			x.store(p, c, i)
			return true
		}
		if dist1(cur) < dist1(c) {
			x.store(p, c, i)
			c, i = cur, j
		}
		if dist1(c) == maxDist+1 {
			return false
		}
		c++ // the carried entry moves one slot farther from its home
	}
}

// grow makes the table half as large again (at least 8 slots more) and puts
// back every entry of the slab that is in a queue, reading the slab in
// memory order. It grows again while an entry lands too far from home,
// which takes hundreds of keys with one home slot; with 32-bit hashes from a
// random seed that does not happen, and a table 25 times the needed size
// still failing means the hashes are broken.
func (x *index) grow(sl *slab) {
	for range 8 {
		x.slots += max(x.slots/2, 8)
		sl.mem.free(x.b)
		x.b = sl.mem.alloc((x.slots + maxDist + 2) * slotBytes)
		if x.rebuild(sl) {
			return
		}
	}
	panic("store: index: too many keys share a home slot")
}

// rebuild puts every queued entry of the slab into the (empty) table.
func (x *index) rebuild(sl *slab) bool {
	for i, end := uint32(1), sl.end(); i < end; i++ {
		if e := sl.at(i); e.queue != queueNone && !x.put(e.hash, i) {
			return false
		}
	}
	return true
}

// remove deletes slab index i stored under hash h and shifts the entries
// after it back by one slot, up to the first one that is empty or at its
// home, so that no tombstone is needed.
func (x *index) remove(h, i uint32) {
	want, p := ctrlOf(h, 0), x.home(h)
	for d := 0; ; d++ {
		c, j := x.load(p)
		if c == want && j == i {
			break
		}
		if dist1(c) < dist1(want) || d == maxDist {
			panic("store: index lost an entry")
		}
		p, want = p+1, want+1
	}
	for {
		q := p + 1
		c, j := x.load(q)
		if dist1(c) <= 1 { // empty, or at its home
			x.store(p, 0, 0)
			break
		}
		x.store(p, c-1, j)
		p = q
	}
	x.n--
}
