package bench

import (
	"fmt"
	"math/rand/v2"
	"testing"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/roostkv/roost/actors/store"
)

// storeZipfTrace returns a seeded trace of requests over keys, Zipf-distributed
// with exponent s (rank 0 the most popular).
func storeZipfTrace(keys, requests int, s float64, seed uint64) []string {
	names := make([]string, keys)
	for i := range names {
		names[i] = fmt.Sprintf("%07d", i)
	}
	zipf := rand.NewZipf(rand.New(rand.NewPCG(seed, 1)), s, 1, uint64(keys-1))
	trace := make([]string, requests)
	for i := range trace {
		trace[i] = names[zipf.Uint64()]
	}
	return trace
}

// storeHitRatio replays the trace as a look-aside cache: get, and set on a
// miss. The store holds `entries` entries' worth of MaxMemory.
func storeHitRatio(t *testing.T, trace []string, entries, shards int, value []byte) float64 {
	t.Helper()
	perEntry := int64(len(trace[0]) + len(value) + store.EntryOverhead)
	s, err := store.New(store.Config{MaxMemory: int64(entries) * perEntry, Shards: shards})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range trace {
		if _, err := s.Get(k); err != nil {
			if _, err := s.Set(store.SetRequest{Key: k, Value: value}); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := s.Stats()
	if st.Bytes > st.MaxBytes {
		t.Fatalf("store over its limit: %+v", st)
	}
	return float64(st.Hits) / float64(st.Hits+st.Misses)
}

// lruHitRatio replays the trace on hashicorp/golang-lru (plain LRU) holding
// `entries` entries.
func lruHitRatio(t *testing.T, trace []string, entries int, value []byte) float64 {
	t.Helper()
	c, err := lru.New[string, []byte](entries)
	if err != nil {
		t.Fatal(err)
	}
	hits := 0
	for _, k := range trace {
		if _, ok := c.Get(k); ok {
			hits++
		} else {
			c.Add(k, value)
		}
	}
	return float64(hits) / float64(len(trace))
}

// TestStoreHitRatioBeatsLRU is the case for hand-rolling S3-FIFO: on a Zipf
// trace (s=1.01, 1M keys) the store's hit ratio beats a plain LRU of the same
// capacity, at 1 % and 10 % of the keys. Numbers go to docs/store.md.
func TestStoreHitRatioBeatsLRU(t *testing.T) {
	keys, requests := 1_000_000, 2_000_000
	if testing.Short() {
		keys, requests = 100_000, 400_000
	}
	trace := storeZipfTrace(keys, requests, 1.01, 2024)
	value := make([]byte, 16)
	for _, pct := range []int{1, 10} {
		entries := keys * pct / 100
		l := lruHitRatio(t, trace, entries, value)
		s3 := storeHitRatio(t, trace, entries, 0, value)
		s3sharded := storeHitRatio(t, trace, entries, 16, value)
		t.Logf("zipf 1.01, %d keys, %d requests, cache %d%% (%d entries): LRU %.4f, store S3-FIFO %.4f (default shards), %.4f (16 shards)",
			keys, requests, pct, entries, l, s3, s3sharded)
		if s3 <= l || s3sharded <= l {
			t.Errorf("cache %d%%: S3-FIFO (%.4f, %.4f with 16 shards) does not beat LRU (%.4f)", pct, s3, s3sharded, l)
		}
	}
}
