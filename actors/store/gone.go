package store

import (
	"strings"
	"sync/atomic"
)

// Keys the store removes on its own: expired (their TTL passed, found by a
// read, a write or the sweep) or evicted (to stay under MaxMemory). A node
// announces them on its change feed when asked to (--feed-expiry).

// GoneReason says why the store removed a key on its own.
type GoneReason uint8

// The reasons of a Gone.
const (
	GoneExpired GoneReason = iota + 1 // its TTL passed
	GoneEvicted                       // evicted to stay under MaxMemory
)

func (r GoneReason) String() string {
	switch r {
	case GoneExpired:
		return "expired"
	case GoneEvicted:
		return "evicted"
	}
	return "unknown"
}

// Gone is one key the store removed on its own.
type Gone struct {
	Key     string
	Version uint64 // the version of the entry removed
	Reason  GoneReason
}

// goneHook holds the NotifyGone callback.
type goneHook = atomic.Pointer[func(Gone)]

// NotifyGone has fn called with every live key the store removes on its
// own: expired or evicted; not deletes, drops or tombstones reaped. fn runs
// while the key's shard is locked: it must not call the store and must be
// quick (append to a queue, a non-blocking send). NotifyGone(nil) stops the
// calls; with no fn the store pays one atomic load per removal.
func (s *Store) NotifyGone(fn func(Gone)) {
	if fn == nil {
		s.gone.Store(nil)
		return
	}
	s.gone.Store(&fn)
}

// report tells the NotifyGone callback, if any, that live entry i goes for
// reason. The caller holds sh.mu and removes i right after.
func (sh *shard) report(i uint32, reason GoneReason) {
	if sh.gone == nil {
		return
	}
	fn := sh.gone.Load()
	if fn == nil {
		return
	}
	e := sh.sl.at(i)
	(*fn)(Gone{Key: strings.Clone(sh.sl.key(e)), Version: e.version, Reason: reason})
}
