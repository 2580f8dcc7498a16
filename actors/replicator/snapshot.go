package replicator

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/roostkv/roost/actors/store"
)

// The store has no index by partition: reading one partition's records is a
// pass over every key. When a node joins or comes back, its peers serve
// snapshots of many partitions at once, so a snapshot reads them all in one
// pass and keeps them for snapCacheFor; a partition's copy is used as long
// as nothing was written to it since (its mutation count is unchanged).

// snapCacheFor is how long the records of one pass serve snapshots;
// snapRebuildAfter is how old a pass may be before a partition written
// since makes a new pass rather than a read of that partition alone (when
// partitions are being synced, many change one after the other).
const (
	snapCacheFor     = 3 * time.Second
	snapRebuildAfter = 250 * time.Millisecond
)

type snapCache struct {
	mu     sync.Mutex
	built  time.Time
	parts  map[int][]store.Record // by partition, sorted by key once sorted[p]
	sorted map[int]bool
	stamps []uint64 // each partition's mutation count before the pass
}

// snapshotOf returns partition p's records sorted by key, as of mutation
// count stamp or later.
func (r *Replicator) snapshotOf(p int, stamp uint64) []store.Record {
	c := &r.snaps
	c.mu.Lock()
	defer c.mu.Unlock()
	age := time.Since(c.built)
	if age > snapCacheFor || c.stamps[p] != stamp && age > snapRebuildAfter {
		c.stamps = make([]uint64, len(r.parts))
		for i, pt := range r.parts {
			c.stamps[i] = pt.mutations.Load()
		}
		c.parts = map[int][]store.Record{}
		for _, rec := range r.st.Export(nil, true) {
			q := r.partitionOf(rec.Key)
			c.parts[q] = append(c.parts[q], rec)
		}
		c.sorted = map[int]bool{}
		c.built = time.Now()
	}
	if c.stamps[p] != stamp {
		// Written since a pass of a moment ago: read this partition alone.
		c.parts[p] = r.st.Export(func(key string) bool { return r.partitionOf(key) == p }, true)
		c.stamps[p], c.sorted[p] = stamp, false
	}
	if !c.sorted[p] {
		slices.SortFunc(c.parts[p], func(a, b store.Record) int { return strings.Compare(a.Key, b.Key) })
		c.sorted[p] = true
	}
	return c.parts[p]
}
