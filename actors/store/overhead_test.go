package store

import (
	"fmt"
	"runtime"
	"testing"
)

// heapCost is what storing entries costs on the heap, per entry.
type heapCost struct {
	store float64 // heap the store allocated, beyond len(key): record, index, ghost, key clone (rounding included)
	value float64 // heap a caller's value occupies: its length, or more where the allocator rounds it up
	gross float64 // store plus value, beyond len(key)+len(value): adds the value's size-class rounding
}

// measureHeap inserts n entries with 16-byte keys (an exact Go size class)
// and values of valueLen bytes into a store with the given MaxMemory, and
// returns the heap growth per entry from runtime.MemStats.HeapAlloc after
// runtime.GC. The values are allocated first and measured apart, as a
// caller's buffers that the store keeps (SetRequest.Value).
func measureHeap(t *testing.T, n, valueLen int, maxMemory int64) heapCost {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%012d", i)
	}
	values := make([][]byte, n)
	var m0, m1, m2 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i := range values {
		if valueLen > 0 {
			values[i] = make([]byte, valueLen)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)

	s, err := New(Config{MaxMemory: maxMemory})
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if _, err := s.Set(SetRequest{Key: k, Value: values[i]}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m2)
	if st := s.Stats(); st.Keys != int64(n) || st.Evictions != 0 {
		t.Fatalf("stats %+v", st)
	}
	runtime.KeepAlive(s)
	runtime.KeepAlive(keys)
	runtime.KeepAlive(values)

	perEntry := func(a, b *runtime.MemStats) float64 {
		return float64(int64(b.HeapAlloc)-int64(a.HeapAlloc)) / float64(n)
	}
	store, value := perEntry(&m1, &m2)-16, perEntry(&m0, &m1)
	return heapCost{store: store, value: value, gross: store + value - float64(valueLen)}
}

// roomFor is a MaxMemory that holds n entries of valueLen-byte values with
// room to spare: the ghost is sized, nothing is evicted.
func roomFor(n, valueLen int) int64 { return int64(2 * n * (16 + valueLen + EntryOverhead)) }

func TestEntryOverheadIsHonest(t *testing.T) {
	const n, valueLen = 200_000, 32 // 32: an exact size class, so no rounding hides in the figure
	tests := []struct {
		name      string
		maxMemory int64
	}{
		{"bounded", roomFor(n, valueLen)},
		{"unbounded", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := measureHeap(t, n, valueLen, tt.maxMemory)
			t.Logf("%s, %d entries: %.1f heap bytes per entry beyond key and value; EntryOverhead %d", tt.name, n, got.gross, EntryOverhead)
			if got.gross > 1.15*EntryOverhead || got.gross < EntryOverhead/1.15 {
				t.Fatalf("measured %.1f bytes per entry, EntryOverhead %d is not within 1.15x of it", got.gross, EntryOverhead)
			}
		})
	}
}

// TestOverheadAtOneMillion checks the target of issue 6: at most 80 bytes per
// entry beyond key and value with 1M entries. The store's own cost is
// checked for every value size. The gross cost adds what the caller's value
// allocations occupy beyond their length, so it is checked where that is
// nothing: 8-byte values, an exact size class (not under the race detector,
// which pads them). A 100-byte value occupies 112 bytes whoever keeps it.
func TestOverheadAtOneMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 1M entries per case")
	}
	const n, limit = 1_000_000, 80
	tests := []struct {
		name     string
		valueLen int
		bounded  bool
	}{
		{"small values, bounded", 8, true},
		{"small values, unbounded", 8, false},
		{"100-byte values, bounded", 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var maxMemory int64
			if tt.bounded {
				maxMemory = roomFor(n, tt.valueLen)
			}
			got := measureHeap(t, n, tt.valueLen, maxMemory)
			t.Logf("%d entries, %d-byte values (occupying %.0f): store %.1f, gross %.1f heap bytes per entry beyond key and value",
				n, tt.valueLen, got.value, got.store, got.gross)
			if got.store > limit {
				t.Errorf("the store takes %.1f bytes per entry beyond key and value, more than %d", got.store, limit)
			}
			if got.value == float64(tt.valueLen) && got.gross > limit {
				t.Errorf("entries cost %.1f heap bytes beyond key and value, more than %d", got.gross, limit)
			}
		})
	}
}
