package store

import (
	"strings"
	"sync/atomic"
)

// Eviction and the copies of a replicated key (docs/store.md, "Eviction
// and copies"). A node holds the partitions it leads and copies of others';
// if each copy evicted on its own, the copies of a partition would differ
// and anti-entropy would bring back what one of them evicted. So the node's
// replicator steers eviction: Spare passes over the copies whose primary is
// elsewhere (that primary, which serves the reads and sees which keys are
// used, evicts them for every copy), and Evicted hears every entry the
// store evicts, to have the primary's eviction applied to the other copies
// with Evict.

// EvictHooks steer and report eviction. Both run while the key's shard is
// locked: quick, no call into the store, and key is a view valid only
// during the call.
type EvictHooks struct {
	// Spare reports whether eviction should pass key over while other
	// entries may go instead: at most maxSpared (64) in a row, then the next
	// victim goes whatever Spare says, so a shard holding only spared
	// keys still stays within its budget.
	Spare func(key string) bool
	// Evicted is called with every entry eviction removes, live entries
	// and tombstones, with its version; not with those Evict removes.
	Evicted func(key string, version uint64)
}

// maxSpared is how many victims in a row Spare may pass over before one
// goes anyway: with R=3 two keys in three are spared, and 64 in a row
// almost never happen while others remain; it bounds an eviction's walk
// when the shard holds little else.
const maxSpared = 64

// evictHooks holds the SetEvictHooks hooks.
type evictHooks = atomic.Pointer[EvictHooks]

// SetEvictHooks installs h (nil: none, every victim goes and nobody hears
// of it). With none the eviction path costs one atomic load more.
func (s *Store) SetEvictHooks(h *EvictHooks) { s.evict.Store(h) }

// Evict removes key's entry, live or tombstone, if its version is at most
// version: an eviction decided for every copy of the key, applied to this
// one. A newer entry stays: a write after the eviction is never undone by
// it. It leaves no tombstone, counts a live entry as an eviction and tells
// NotifyGone's fn of it (GoneEvicted), not EvictHooks.Evicted. A pinned
// entry stays. It reports whether it removed an entry.
func (s *Store) Evict(key string, version uint64) bool {
	sh, h := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.idx.find(&sh.sl, h, key)
	if i == 0 {
		return false
	}
	e := sh.sl.at(i)
	if e.version > version || e.queue == queuePinned {
		return false
	}
	if !e.tomb() {
		sh.report(i, GoneEvicted)
		sh.evictions++
	}
	sh.drop(i)
	return true
}

// hooks returns the store's eviction hooks, nil when none.
func (sh *shard) hooks() *EvictHooks {
	if sh.evict == nil {
		return nil
	}
	return sh.evict.Load()
}

// spare puts victim i, out of every queue, back at main's head when the
// hooks' Spare asks and fewer than maxSpared victims were passed over in a
// row (*spared counts them).
func (sh *shard) spare(h *EvictHooks, i uint32, spared *int) bool {
	if h == nil || h.Spare == nil || *spared >= maxSpared {
		return false
	}
	e := sh.sl.at(i)
	if !h.Spare(sh.sl.key(e)) {
		return false
	}
	*spared++
	e.queue = queueMain
	sh.pol.main.pushHead(&sh.sl, i)
	return true
}

// evicted tells the hooks' Evicted of entry i, about to be evicted.
func (sh *shard) evicted(h *EvictHooks, i uint32) {
	if h == nil || h.Evicted == nil {
		return
	}
	e := sh.sl.at(i)
	h.Evicted(strings.Clone(sh.sl.key(e)), e.version)
}
