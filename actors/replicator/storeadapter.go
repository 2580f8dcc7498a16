package replicator

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/partition"
)

// storeAdapter is the node's store as the cores see it (the Store
// interface, through partStore). It counts each partition's writes, so
// that snapshots can be served from one pass over the store: the store has
// no index by partition, and when a node joins or comes back its peers
// serve snapshots of many partitions at once.
type storeAdapter struct {
	st         *store.Store
	partitions int
	mutations  []atomic.Uint64 // writes per partition through the replicator
	followed   atomic.Uint64   // entries Evict removed (EvictionStats.Followed)
	snaps      snapCache
}

func newStoreAdapter(st *store.Store, partitions int) *storeAdapter {
	return &storeAdapter{st: st, partitions: partitions, mutations: make([]atomic.Uint64, partitions)}
}

// partStore is one partition's view of the adapter.
type partStore struct {
	a *storeAdapter
	p int
}

func (s partStore) Set(req store.SetRequest) (store.Entry, error) {
	e, err := s.a.st.Set(req)
	if err == nil {
		s.a.mutations[s.p].Add(1)
	}
	return e, err
}

func (s partStore) Remove(req store.DeleteRequest) (uint64, bool, error) {
	v, deleted, err := s.a.st.Remove(req)
	if deleted {
		s.a.mutations[s.p].Add(1)
	}
	return v, deleted, err
}

func (s partStore) Apply(rec store.Record) (bool, error) {
	ok, err := s.a.st.Apply(rec)
	if ok {
		s.a.mutations[s.p].Add(1)
	}
	return ok, err
}

func (s partStore) Evict(key string, version uint64) bool {
	ok := s.a.st.Evict(key, version)
	if ok {
		s.a.mutations[s.p].Add(1)
		s.a.followed.Add(1)
	}
	return ok
}

func (s partStore) Records(p int) []store.Record { return s.a.snapshotOf(p) }

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
	stamps []uint64 // each partition's mutation count before its records were read
}

// snapshotOf returns partition p's records sorted by key, as of now.
func (a *storeAdapter) snapshotOf(p int) []store.Record {
	c := &a.snaps
	c.mu.Lock()
	defer c.mu.Unlock()
	stamp := a.mutations[p].Load()
	age := time.Since(c.built)
	if c.stamps == nil || age > snapCacheFor || c.stamps[p] != stamp && age > snapRebuildAfter {
		c.stamps = make([]uint64, a.partitions)
		for i := range c.stamps {
			c.stamps[i] = a.mutations[i].Load()
		}
		c.parts = map[int][]store.Record{}
		for _, rec := range a.st.Export(nil, true) {
			q := partition.Of(rec.Key, a.partitions)
			c.parts[q] = append(c.parts[q], rec)
		}
		c.sorted = map[int]bool{}
		c.built = time.Now()
	}
	if c.stamps[p] != stamp {
		// Written since a pass of a moment ago: read this partition alone.
		stamp = a.mutations[p].Load()
		c.parts[p] = a.st.Export(func(key string) bool { return partition.Of(key, a.partitions) == p }, true)
		c.stamps[p], c.sorted[p] = stamp, false
	}
	if !c.sorted[p] {
		slices.SortFunc(c.parts[p], func(x, y store.Record) int { return strings.Compare(x.Key, y.Key) })
		c.sorted[p] = true
	}
	return c.parts[p]
}

func (s partStore) Get(key string) (store.Entry, error) { return s.a.st.Get(key) }
