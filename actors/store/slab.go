package store

import "unsafe"

// EntryOverhead is the memory, in bytes, accounted per entry beyond
// len(key)+len(value). It is measured, not guessed (TestEntryOverheadIsHonest
// checks it against the heap), and is made of:
//
//	64  the entry record in its shard's slab (key and value pointers, version,
//	    created, expiry, lengths, hash, queue links, flags, queue id, counter)
//	~7  its slot in the shard's index (5 bytes per slot, load 7/12..7/8)
//	~3  the ghost queue's 2-byte fingerprints, sized to the live entry count
//	    (only when MaxMemory > 0)
//	~1  slab chunks not yet filled, free slots
//
// Rounding of the key and value allocations to Go's size classes is not in it
// (a 20-byte key occupies 24 bytes, a 100-byte value 112); see docs/store.md.
const EntryOverhead = 76

// entry is one key in a shard's slab: 64 bytes, one cache line (checked by
// a test). Lengths, links and the access counter are packed into 32-bit and
// smaller fields; the rare parts that do not fit (the high half of wide
// flags) live beside the slab, in the shard.
type entry struct {
	key     *byte  // the key's bytes: a private clone, stored once (the index holds slab indices)
	value   *byte  // the caller's value bytes, aliased without a copy; nil when empty
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

// keyString returns the entry's key ("" for a free slot). The string aliases
// the stored bytes.
func (e *entry) keyString() string {
	if e.key == nil {
		return ""
	}
	return unsafe.String(e.key, e.keyLen())
}

// setKey makes k, 1..MaxKeyLen bytes that are never modified, the entry's key.
func (e *entry) setKey(k string) {
	e.key, e.klen = unsafe.StringData(k), uint16(len(k)-1)
}

// hasKey reports whether the entry's key is k. Only for entries in use.
func (e *entry) hasKey(k string) bool {
	return e.keyLen() == len(k) && unsafe.String(e.key, len(k)) == k
}

// valueBytes returns the stored value (nil when empty). The result must not
// be modified.
func (e *entry) valueBytes() []byte {
	if e.vlen == 0 {
		return nil
	}
	return unsafe.Slice(e.value, e.vlen)
}

// setValue keeps v, at most MaxValueLen bytes, without copying: the contract
// of SetRequest.Value (never modified after the call) makes the alias safe.
func (e *entry) setValue(v []byte) {
	if len(v) == 0 {
		e.value, e.vlen = nil, 0
		return
	}
	e.value, e.vlen = unsafe.SliceData(v), uint32(len(v))
}

// public copies the entry, which must be in use, out for a caller;
// flagsHigh is the high half of its flags (see shard.flagsHigh).
func (e *entry) public(withValue bool, flagsHigh uint32) Entry {
	out := Entry{
		Key:     unsafe.String(e.key, e.keyLen()),
		Version: e.version,
		Created: e.created,
		Flags:   uint64(flagsHigh)<<32 | uint64(e.flags),
		Expires: e.expires,
	}
	if withValue {
		out.Value = e.valueBytes()
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
	chunkBits = 9
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
)

// slab stores a shard's entries in fixed chunks so that entries are not
// separate heap objects (no per-entry allocation header or size-class
// rounding) and links between them are 4-byte indices. The first chunk grows
// by doubling up to chunkSize, so a shard with few keys stays small. A full
// chunk is 32 KiB: the smallest size Go allocates as a large object,
// page-aligned and without a header, so no record in it straddles two cache
// lines (TestSlabRecordsAreCacheLines), while a shard's last, partly filled
// chunk wastes at most 32 KiB. Not safe for concurrent use.
type slab struct {
	chunks [][]entry
	free   uint32 // first free slot, chained through entry.next; 0 = none
	used   int    // slots holding an entry
}

// at returns the entry at index i. The pointer is valid until the next alloc.
func (s *slab) at(i uint32) *entry { return &s.chunks[i>>chunkBits][i&chunkMask] }

// alloc returns the index of a zeroed free slot.
func (s *slab) alloc() uint32 {
	s.used++
	if i := s.free; i != 0 {
		s.free = s.at(i).next
		s.at(i).next = 0
		return i
	}
	if len(s.chunks) == 0 {
		s.chunks = append(s.chunks, make([]entry, 1, 8)) // slot 0 is "none"
	}
	last := len(s.chunks) - 1
	c := s.chunks[last]
	switch {
	case len(c) == chunkSize:
		c = make([]entry, 0, chunkSize)
		s.chunks = append(s.chunks, c)
		last++
	case len(c) == cap(c): // the first chunk, still growing
		c = append(make([]entry, 0, min(2*cap(c), chunkSize)), c...)
	}
	s.chunks[last] = append(c, entry{})
	return uint32(last<<chunkBits | (len(s.chunks[last]) - 1))
}

// release zeroes slot i (dropping its key and value) and frees it.
func (s *slab) release(i uint32) {
	*s.at(i) = entry{next: s.free}
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
