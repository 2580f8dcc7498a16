package store

import (
	"errors"
	"time"
)

// Errors of the store.
var (
	ErrNotFound    = errors.New("store: key not found")
	ErrCASMismatch = errors.New("store: version does not match")
	ErrTooLarge    = errors.New("store: entry larger than the memory limit")
	ErrInvalid     = errors.New("store: invalid request")
	ErrStopped     = errors.New("store: stopped")
)

// Limits of one entry, set by the packed entry record (slab.go). A node's
// own limits (--max-key, --max-value) are within them.
const (
	MaxKeyLen   = 64 << 10  // bytes; a longer key is ErrInvalid
	MaxValueLen = 1<<32 - 1 // bytes; a larger value is ErrTooLarge
)

// Entry is one key as the store holds it. Value is the caller's own copy
// (the store's bytes live in its arena and are never handed out); from Get,
// Lookup and Peek, Key is the string the caller passed.
type Entry struct {
	Key     string
	Value   []byte
	Version uint64 // rises with every write of the key; never 0 for a stored entry
	Created uint64 // the version that created the key (consul's CreateIndex)
	Flags   uint64 // opaque, stored with the value
	Expires int64  // absolute expiry in Unix nanoseconds; 0 = never
}

// SetRequest writes one key.
type SetRequest struct {
	Key      string
	Value    []byte        // copied by the store: the caller may reuse it after the call
	Flags    uint64        // opaque, stored with the value
	TTL      time.Duration // 0 = no expiry; negative is invalid
	CAS      uint64        // expected current version when CheckCAS; 0 = "only if absent"
	CheckCAS bool          // apply only if the current version equals CAS
	// KeepTTL keeps the expiry of the key's live entry (TTL is then
	// ignored); a key created by the write gets TTL. Counters use it.
	KeepTTL bool
}

// DeleteRequest removes one key. Deleting an absent key succeeds.
type DeleteRequest struct {
	Key      string
	CAS      uint64 // expected current version when CheckCAS; 0 = "only if absent"
	CheckCAS bool
}

// Change is one write the store applied, as Store.Notify reports it.
type Change struct {
	Key     string
	Version uint64 // the write's version
	Deleted bool   // a delete of a present key (the key now has a tombstone); else a set
}

// Record is one key's state as replication and snapshots carry it: a live
// entry, or a tombstone (Deleted) that remembers a delete's version.
type Record struct {
	Key     string
	Value   []byte // nil for a tombstone; Export's are copies, Apply copies it in
	Version uint64
	Created uint64
	Flags   uint64
	Expires int64 // absolute Unix nanoseconds; 0 = never. Ignored for a tombstone
	Deleted bool
}

// Stats are the store's counters at one moment.
type Stats struct {
	Keys           int64 `json:"keys"`            // live entries (expired but unswept ones included), the pinned ones aside
	Pinned         int64 `json:"pinned"`          // live pinned entries (Config.Pinned), counted in Bytes but not in Keys
	Bytes          int64 `json:"bytes"`           // accounted memory of live entries: keys, values and per-entry overhead
	Tombstones     int64 `json:"tombstones"`      // deleted keys remembered with their delete's version (see Config.TombstoneTTL)
	TombstoneBytes int64 `json:"tombstone_bytes"` // accounted memory of tombstones: key and per-entry overhead; MaxBytes covers Bytes+TombstoneBytes
	MaxBytes       int64 `json:"max_bytes"`       // the limit; 0 = unlimited
	Hits           int64 `json:"hits"`            // gets that found a live key
	Misses         int64 `json:"misses"`          // gets that found nothing
	Sets           int64 `json:"sets"`            // successful writes: Set's, and the live records Apply stored
	Deletes        int64 `json:"deletes"`         // successful deletes of a present key (each leaves a tombstone), Delete's and Apply's
	Evictions      int64 `json:"evictions"`       // entries removed to stay under MaxBytes
	Expirations    int64 `json:"expirations"`     // entries removed because their TTL passed
}
