package store

import "unsafe"

// EntryOverhead is the memory, in bytes, accounted per entry beyond
// len(key)+len(value). It is measured, not guessed (TestEntryOverheadIsHonest
// checks it against the heap), and is made of:
//
//	80  the entry record in its shard's slab (key and value headers, version,
//	    created, flags, expiry, hash, queue links, frequency, queue id)
//	~14 its slot in the shard's index (8-byte slots, load 3/8..3/4)
//	~6  the ghost queue's 4-byte fingerprints, sized to the live entry count
//	    (only when MaxMemory > 0)
//	~4  slab chunks not yet filled, free slots, allocator rounding
//
// Rounding of the key and value allocations to Go's size classes is not in it
// (a 20-byte key occupies 24 bytes); see docs/store.md.
const EntryOverhead = 104

// entry is one key in a shard's slab. Its size is 80 bytes (checked by a test).
type entry struct {
	key     string // the key; the index refers to entries, so the key bytes are stored once
	value   string // the caller's value bytes, aliased without a copy (see valueBytes)
	version uint64 // version of the last write
	created uint64 // version of the write that created the key
	flags   uint64 // opaque, from the caller
	expires int64  // absolute expiry in Unix nanoseconds; 0 = never. A tombstone's: when the sweep removes it
	hash    uint32 // upper 32 bits of the key's hash: index probes and ghost fingerprint
	prev    uint32 // S3-FIFO queue link towards the newer end; 0 = none
	next    uint32 // S3-FIFO queue link towards the older end; chains free slots too
	freq    uint8  // S3-FIFO access counter, 0..maxFreq
	queue   uint8  // which queue holds the entry: queueNone (free slot), queueSmall, queueMain, queueTomb (a tombstone)
}

// size is the entry's accounted memory.
func (e *entry) size() int64 { return int64(len(e.key)+len(e.value)) + EntryOverhead }

// expired reports whether the entry's TTL has passed at now (Unix nanoseconds).
// For a tombstone it tells whether the sweep may remove it.
func (e *entry) expired(now int64) bool { return e.expires != 0 && e.expires <= now }

// tomb reports whether the entry is a tombstone: a deleted key remembered
// with the delete's version and no value.
func (e *entry) tomb() bool { return e.queue == queueTomb }

// public copies the entry out for a caller.
func (e *entry) public(withValue bool) Entry {
	out := Entry{Key: e.key, Version: e.version, Created: e.created, Flags: e.flags, Expires: e.expires}
	if withValue {
		out.Value = valueBytes(e.value)
	}
	return out
}

// valueString aliases b as a string without copying. The store keeps values
// as strings because a string header is 8 bytes smaller than a slice header;
// the contract of SetRequest.Value (never modified after the call) makes the
// alias safe.
func valueString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// valueBytes turns a stored value back into the caller's bytes (nil when
// empty). The result must not be modified.
func valueBytes(s string) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// Slab geometry: entries live in chunks of chunkSize records, addressed by a
// uint32 index; index 0 is reserved as "none".
const (
	chunkBits = 10
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
)

// slab stores a shard's entries in fixed chunks so that entries are not
// separate heap objects (no per-entry allocation header or size-class
// rounding) and links between them are 4-byte indices. The first chunk grows
// by doubling, so a shard with few keys stays small. Not safe for concurrent
// use.
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
	if len(s.chunks[last]) == chunkSize {
		s.chunks = append(s.chunks, make([]entry, 0, chunkSize))
		last++
	}
	s.chunks[last] = append(s.chunks[last], entry{})
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
