package bench

import (
	"testing"

	"github.com/roostkv/roost/actors/store"
)

// storeHitRatioBatched replays the trace as storeHitRatio does, but reads
// it in batches of batch keys through GetMany, as a node reads a batch of
// gets, then sets the batch's misses.
func storeHitRatioBatched(t *testing.T, trace []string, entries, batch int, value []byte) float64 {
	t.Helper()
	perEntry := int64(len(trace[0]) + len(value) + store.EntryOverhead)
	s, err := store.New(store.Config{MaxMemory: int64(entries) * perEntry})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]store.Entry, batch)
	var buf []byte
	for lo := 0; lo < len(trace); lo += batch {
		keys := trace[lo:min(lo+batch, len(trace))]
		buf = s.GetMany(keys, out, buf[:0])
		for i, k := range keys {
			if out[i].Version == 0 {
				if _, err := s.Set(store.SetRequest{Key: k, Value: value}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	st := s.Stats()
	return float64(st.Hits) / float64(st.Hits+st.Misses)
}

// TestStoreHitRatioGetMany: reading in batches (store.GetMany, as the
// node's batches of gets do) keeps S3-FIFO's hit ratio. In a batch, a
// missing key asked twice misses twice (the set comes after the batch), so
// the ratio may be a hair lower than key by key; no more than that.
func TestStoreHitRatioGetMany(t *testing.T) {
	keys, requests := 1_000_000, 2_000_000
	if testing.Short() { // CI's race step: a few seconds
		keys, requests = 20_000, 100_000
	}
	trace := storeZipfTrace(keys, requests, 1.01, 2024)
	value := make([]byte, 16)
	entries := keys / 10
	one := storeHitRatio(t, trace, entries, 0, value)
	for _, batch := range []int{96} {
		many := storeHitRatioBatched(t, trace, entries, batch, value)
		t.Logf("zipf 1.01, %d keys, cache 10%%: Get %.4f, GetMany in batches of %d %.4f", keys, one, batch, many)
		if many < one-0.002 {
			t.Errorf("batches of %d: hit ratio %.4f, key by key %.4f", batch, many, one)
		}
	}
}
