package store

import "encoding/binary"

// index maps a key to its slab index and to where its bytes are: an
// open-addressing table with linear probing, Robin Hood insertion and
// backward-shift deletion. A slot is 10 bytes: a 2-byte control word (8
// bits of the key's hash, the tag, and the slot's distance from the key's
// home slot), the 4-byte slab index, and the entry's arena location packed
// in 4 bytes (packLoc; 0 when it does not fit, then the record's is used).
// A probe compares the control word, so it reads the rest of the slot and
// touches the slab only when the tag matches (1 in 256 of the other
// entries at the same distance). Robin Hood keeps every key close to its
// home and lets a lookup for an absent key stop as soon as it meets an entry
// nearer its own home; backward shift leaves no tombstones, so probes stay
// short under any mix of inserts and deletes.
//
// Why the location is in the slot: a lookup then has the addresses of both
// the entry record and the key's bytes as soon as it has read the slot, so
// their two cache misses are in flight at once, where with the location
// only in the record the key's bytes waited for the record (three misses
// in a row: slot, record, block; BENCHMARKS.md, "slot"). The slot's
// location is kept equal to the record's (relocate, after a write that
// moves the block; checked by index.check in the invariant tests).
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

// slotBytes is the size of a slot: control word, slab index, packed arena
// location, little endian. A control word is at an even offset, so it never
// straddles two cache lines.
const slotBytes = 10

// Load: the index grows by half when an insert would take it above its
// maximum load. A table of up to sparseSlots slots (40 KiB) is kept at most
// half full: its memory does not matter, and in a table that sits in the
// cache a lookup costs about its number of probes (each one past the first
// is a mispredicted branch). A larger one is filled up to 6/7, about 12
// bytes per entry: there a lookup costs its cache misses, the same at
// either load.
const (
	sparseSlots = 4096
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

// packLoc packs arena location loc into 32 bits: the page id in the high
// 16, the offset in 8-byte units (blocks are 8-byte aligned, and a class's
// page is under 512 KiB) in the low 16. It returns 0, "not packed", when
// the page id or the offset does not fit: a shard with more than 65 535
// arena pages (4 GiB of small blocks in 64 KiB pages, or as many large
// values) still works, its lookups of those entries read the location from
// the record, one miss after the other.
func packLoc(loc uint64) uint32 {
	id, off := loc>>32, uint32(loc)
	if id >= 1<<16 || off >= 8<<16 || off%8 != 0 {
		return 0
	}
	return uint32(id)<<16 | off/8
}

// unpackLoc is the arena location packLoc packed into l (not 0).
func unpackLoc(l uint32) uint64 { return uint64(l>>16)<<32 | uint64(l&0xffff)*8 }

// load returns slot p's control word and slab index.
func (x *index) load(p int) (uint16, uint32) { return x.ctrl(p), x.slot(p) }

// ctrl returns slot p's control word.
func (x *index) ctrl(p int) uint16 { return binary.LittleEndian.Uint16(x.b[p*slotBytes:]) }

// slot returns slot p's slab index.
func (x *index) slot(p int) uint32 { return binary.LittleEndian.Uint32(x.b[p*slotBytes+2:]) }

// loc returns slot p's packed arena location (0 = read the record's).
func (x *index) loc(p int) uint32 { return binary.LittleEndian.Uint32(x.b[p*slotBytes+6:]) }

// store sets slot p.
func (x *index) store(p int, c uint16, i, l uint32) {
	s := x.b[p*slotBytes : p*slotBytes+slotBytes]
	binary.LittleEndian.PutUint16(s, c)
	binary.LittleEndian.PutUint32(s[2:], i)
	binary.LittleEndian.PutUint32(s[6:], l)
}

// find returns the slab index of key, or 0.
//
// On a tag match it asks for the record's key length (the record's last
// bytes) and location (its first: a record straddling two cache lines has
// both lines asked for) and then the key's bytes at the slot's location:
// all the addresses come from the slot, so the processor, running ahead of
// the checks, has the misses in flight together. The slot's location equals the record's, so a key of
// the right length that compares equal is the key.
func (x *index) find(sl *slab, h uint32, key string) uint32 {
	if x.n == 0 {
		return 0
	}
	for p, want := x.home(h), ctrlOf(h, 0); ; p, want = p+1, want+1 { // one slot farther from home
		c := x.ctrl(p)
		if c == want {
			i, l := x.slot(p), x.loc(p)
			e := sl.at(i)
			if l == 0 { // not packed: the record's location, after the record
				if e.hash == h && sl.hasKey(e, key) {
					return i
				}
			} else if e.keyLen() == len(key) && e.loc != 0 && sl.data.viewString(unpackLoc(l), len(key)) == key {
				return i
			}
		} else if dist1(c) < dist1(want) { // empty, or nearer its home than key would be: key is absent
			return 0
		}
	}
}

// probe returns the slab index and packed location in the first slot of
// hash h's probe whose tag matches, or zeros: find's candidate, without
// looking at the slab.
func (x *index) probe(h uint32) (uint32, uint32) {
	for p, want := x.home(h), ctrlOf(h, 0); ; p, want = p+1, want+1 {
		c := x.ctrl(p)
		if c == want {
			return x.slot(p), x.loc(p)
		}
		if dist1(c) < dist1(want) {
			return 0, 0
		}
	}
}

// insert adds slab index i under hash h, with its record's arena location;
// the key must not be present. Growth rebuilds the index from the slab's
// entries that are in a queue, so i must not be in one yet.
func (x *index) insert(sl *slab, h, i uint32) {
	if x.full(x.n + 1) {
		x.grow(sl)
	}
	for !x.put(h, i, packLoc(sl.at(i).loc)) {
		x.grow(sl)
	}
	x.n++
}

// put places slab index i, packed location l, under hash h, Robin Hood
// style: walking from its home, it takes the slot of the first entry nearer
// its own home and carries that entry on. It reports false, leaving the
// index inconsistent (to be rebuilt by grow), when an entry would land more
// than maxDist from home.
func (x *index) put(h, i, l uint32) bool {
	c := ctrlOf(h, 0)
	for p := x.home(h); ; p++ {
		cur := x.ctrl(p)
		if cur == 0 {
			x.store(p, c, i, l)
			return true
		}
		if dist1(cur) < dist1(c) {
			j, m := x.slot(p), x.loc(p)
			x.store(p, c, i, l)
			c, i, l = cur, j, m
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
		if e := sl.at(i); e.queue != queueNone && !x.put(e.hash, i, packLoc(e.loc)) {
			return false
		}
	}
	return true
}

// position returns the position of the slot holding slab index i under hash h.
func (x *index) position(h, i uint32) int {
	want, p := ctrlOf(h, 0), x.home(h)
	for d := 0; ; d++ {
		if c := x.ctrl(p); c == want && x.slot(p) == i {
			return p
		} else if dist1(c) < dist1(want) || d == maxDist {
			panic("store: index lost an entry")
		}
		p, want = p+1, want+1
	}
}

// relocate records that slab index i, under hash h, has its block at a new
// arena location: a write that changed the block's size class moved it.
func (x *index) relocate(h, i uint32, loc uint64) {
	p := x.position(h, i)
	binary.LittleEndian.PutUint32(x.b[p*slotBytes+6:], packLoc(loc))
}

// remove deletes slab index i stored under hash h and shifts the entries
// after it back by one slot, up to the first one that is empty or at its
// home, so that no tombstone is needed.
func (x *index) remove(h, i uint32) {
	p := x.position(h, i)
	for {
		q := p + 1
		c := x.ctrl(q)
		if dist1(c) <= 1 { // empty, or at its home
			x.store(p, 0, 0, 0)
			break
		}
		x.store(p, c-1, x.slot(q), x.loc(q))
		p = q
	}
	x.n--
}
