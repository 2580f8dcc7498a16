package store

import "unsafe"

// EntryOverhead is the memory, in bytes, accounted per entry beyond
// len(key)+len(value). It is measured, not guessed (TestEntryOverheadIsHonest
// checks it against the heap), and is made of:
//
//	56  the entry record in its shard's slab (arena location, version,
//	    created, expiry, lengths, hash, queue links, flags, queue id, counter)
//	~12 its slot in the shard's index (10 bytes per slot: control word, slab
//	    index, packed arena location; load 4/7..6/7)
//	~3  the ghost queue's 2-byte fingerprints, sized to the live entry count
//	    (only when MaxMemory > 0)
//	~1  slab chunks not yet filled, free slots
//
// and rounding of the block to its arena size class (none for a block of a
// multiple of 8 bytes up to 256). That sums to about 72 (73.6 measured at
// 200k entries); the constant stays 76, what it was when the record was 64
// bytes and the slot 6, so that a --max-memory holds as many entries as
// before (docs/store.md, "Entries and the slab").
const EntryOverhead = 76

// entry is one key in a shard's slab: 56 bytes (checked by a test) and no
// pointers, so the collector never looks into the slab. Lengths, links and
// the access counter are packed into 32-bit and smaller fields; the rare
// parts that do not fit (the high half of wide flags) live beside the slab,
// in the shard. The key's and the value's bytes are one block in the
// shard's arena (arena.go), at loc. A record is not aligned to a cache
// line (six in eight straddle two): a lookup has its address from the
// index slot, together with the block's, so the record's one or two lines
// and the key's line are fetched at once (index.find); the 8 bytes a
// 64-byte record spent on alignment pay for the slot's location.
type entry struct {
	loc     uint64 // arena location of the block: the key's bytes, then the value's; 0 for a free slot
	version uint64 // version of the last write
	created uint64 // version of the write that created the key
	expires int64  // absolute expiry in Unix nanoseconds; 0 = never. A tombstone's: when the sweep removes it
	vlen    uint32 // len(value)
	hash    uint32 // upper 32 bits of the key's hash: index home slot and tag, ghost bucket and fingerprint
	prev    uint32 // S3-FIFO queue link towards the newer end; 0 = none
	next    uint32 // S3-FIFO queue link towards the older end; chains free slots too
	flags   uint32 // the caller's flags, low half; the high half is in shard.flagsHi when bits&wideFlags
	klen    uint16 // len(key)-1: a key is 1..MaxKeyLen bytes
	queue   uint8  // which queue holds the entry: queueNone (free slot), queueSmall, queueMain, queueTomb (a tombstone)
	bits    uint8  // S3-FIFO access counter (bits&freqMask, 0..maxFreq) and wideFlags
}

// Bits of entry.bits.
const (
	freqMask  uint8 = 0b011 // the S3-FIFO access counter
	wideFlags uint8 = 0b100 // the flags do not fit in 32 bits: shard.flagsHi holds the high half
)

// key returns entry e's key, a view of the arena valid until the shard
// changes ("" for a free slot): clone it to keep it.
func (s *slab) key(e *entry) string {
	if e.loc == 0 {
		return ""
	}
	return s.data.viewString(e.loc, e.keyLen())
}

// hasKey reports whether entry e's key is k. Only for entries in use.
func (s *slab) hasKey(e *entry, k string) bool {
	return e.keyLen() == len(k) && s.data.viewString(e.loc, len(k)) == k
}

// value returns entry e's value, a view of the arena valid until the shard
// changes (nil when empty): copy it to keep it.
func (s *slab) value(e *entry) []byte {
	if e.vlen == 0 {
		return nil
	}
	return s.data.view(e.loc, e.keyLen()+e.valueLen())[e.keyLen():]
}

// appendValue appends entry e's value to buf.
func (s *slab) appendValue(buf []byte, e *entry) []byte { return append(buf, s.value(e)...) }

// setKey gives entry e, a fresh record, the key k (1..MaxKeyLen bytes) and
// the value v (at most MaxValueLen bytes), copied into a new block.
func (s *slab) setKey(e *entry, k string, v []byte) {
	e.klen, e.vlen = uint16(len(k)-1), uint32(len(v))
	e.loc = s.data.alloc(len(k) + len(v))
	b := s.data.view(e.loc, len(k)+len(v))
	copy(b, k)
	copy(b[len(k):], v)
}

// setValue replaces entry e's value with a copy of v: in place when the
// block's size class stays the same, else in a new block (the key moves
// with it) and the old one is freed. Nobody holds a view across it: every
// read copies out under the shard's lock.
func (s *slab) setValue(e *entry, v []byte) {
	kl := e.keyLen()
	oldN, newN := kl+e.valueLen(), kl+len(v)
	if blockSize(oldN) != blockSize(newN) || (oldN > maxClassSize) != (newN > maxClassSize) {
		loc := s.data.alloc(newN)
		copy(s.data.view(loc, kl), s.data.view(e.loc, kl))
		s.data.free(e.loc, oldN)
		e.loc = loc
	}
	e.vlen = uint32(len(v))
	copy(s.data.view(e.loc, newN)[kl:], v)
}

// public copies entry e, which must be in use, out for a caller: key (as
// the given string when the caller has it, else a copy) and value (a copy,
// when withValue); flagsHigh is the high half of its flags (see
// shard.flagsHigh).
func (s *slab) public(e *entry, key string, withValue bool, flagsHigh uint32) Entry {
	if key == "" {
		key = string(s.data.view(e.loc, e.keyLen()))
	}
	out := Entry{
		Key:     key,
		Version: e.version,
		Created: e.created,
		Flags:   uint64(flagsHigh)<<32 | uint64(e.flags),
		Expires: e.expires,
	}
	if withValue && e.vlen != 0 {
		out.Value = s.appendValue(make([]byte, 0, e.vlen), e)
	}
	return out
}

func (e *entry) freq() uint8        { return e.bits & freqMask }
func (e *entry) setFreq(f uint8)    { e.bits = e.bits&^freqMask | f }
func (e *entry) keyLen() int        { return int(e.klen) + 1 }
func (e *entry) valueLen() int      { return int(e.vlen) }
func (e *entry) hasWideFlags() bool { return e.bits&wideFlags != 0 }

// size is the entry's accounted memory.
func (e *entry) size() int64 { return int64(e.keyLen()+e.valueLen()) + EntryOverhead }

// expired reports whether the entry's TTL has passed at now (Unix nanoseconds).
// For a tombstone it tells whether the sweep may remove it.
func (e *entry) expired(now int64) bool { return e.expires != 0 && e.expires <= now }

// tomb reports whether the entry is a tombstone: a deleted key remembered
// with the delete's version and no value.
func (e *entry) tomb() bool { return e.queue == queueTomb }

// Slab geometry: entries live in chunks of chunkSize records, addressed by a
// uint32 index; index 0 is reserved as "none".
const (
	chunkBits = 14
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
)

// entryBytes is the size of an entry record.
const entryBytes = int(unsafe.Sizeof(entry{}))

// slab stores a shard's entries in fixed chunks so that entries are not
// separate heap objects (no per-entry allocation header or size-class
// rounding) and links between them are 4-byte indices. Chunks hold no
// pointers and come from the shard's offheap memory: the first chunk grows
// by doubling up to chunkSize, so a shard with few keys stays small (and on
// the heap, below mapMin); a full chunk is 896 KiB, mapped and page-aligned
// (TestSlabChunksAreMapped), and pages of it not yet used are not
// resident. The slab also holds the arena of its entries' key and value
// bytes. Not safe for concurrent use.
type slab struct {
	chunks [][]entry
	free   uint32 // first free slot, chained through entry.next; 0 = none
	used   int    // slots holding an entry
	data   arena  // the entries' key and value bytes
	mem    *offheap
}

// newSlab makes a slab that takes its memory from mem.
func newSlab(mem *offheap) slab { return slab{mem: mem, data: arena{mem: mem}} }

// at returns the entry at index i. The pointer is valid until the next alloc.
func (s *slab) at(i uint32) *entry { return &s.chunks[i>>chunkBits][i&chunkMask] }

// newChunk returns an empty chunk with room for n records.
func (s *slab) newChunk(n int) []entry {
	b := s.mem.alloc(n * entryBytes)
	return unsafe.Slice((*entry)(unsafe.Pointer(unsafe.SliceData(b))), n)[:0]
}

// freeChunk gives chunk c's memory back.
func (s *slab) freeChunk(c []entry) {
	c = c[:cap(c)]
	s.mem.free(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c))), len(c)*entryBytes))
}

// alloc returns the index of a zeroed free slot.
func (s *slab) alloc() uint32 {
	s.used++
	if i := s.free; i != 0 {
		s.free = s.at(i).next
		s.at(i).next = 0
		return i
	}
	if len(s.chunks) == 0 {
		s.chunks = append(s.chunks, s.newChunk(8)[:1]) // slot 0 is "none"
	}
	last := len(s.chunks) - 1
	c := s.chunks[last]
	switch {
	case len(c) == chunkSize:
		c = s.newChunk(chunkSize)
		s.chunks = append(s.chunks, c)
		last++
	case len(c) == cap(c): // the first chunk, still growing
		grown := append(s.newChunk(min(2*cap(c), chunkSize)), c...)
		s.freeChunk(c)
		c = grown
	}
	s.chunks[last] = append(c, entry{})
	return uint32(last<<chunkBits | (len(s.chunks[last]) - 1))
}

// release frees slot i and its block in the arena.
func (s *slab) release(i uint32) {
	e := s.at(i)
	if e.loc != 0 {
		s.data.free(e.loc, e.keyLen()+e.valueLen())
	}
	*e = entry{next: s.free}
	s.free = i
	s.used--
}

// end is one past the highest index ever allocated; iterate [1, end).
func (s *slab) end() uint32 {
	if len(s.chunks) == 0 {
		return 0
	}
	last := len(s.chunks) - 1
	return uint32(last<<chunkBits + len(s.chunks[last]))
}
