package store

import (
	"fmt"
	"runtime"
	"testing"
)

// memCost is what storing entries costs, per entry.
type memCost struct {
	store float64 // memory the store holds, beyond len(key)+len(value): record, index, ghost, block rounding
	heap  float64 // of which on the Go heap (HeapAlloc after runtime.GC); the rest is mapped and resident
}

// measureMemory inserts n entries with 16-byte keys and values of valueLen
// bytes into a store with the given MaxMemory and returns what it takes
// per entry beyond key and value: its growth of the Go heap (HeapAlloc
// after runtime.GC) plus the resident pages of the memory it mapped
// (mincore): most of the store lives outside the Go heap (offheap.go),
// where HeapAlloc does not see it. The store copies values into its arena,
// so one value buffer serves every Set.
func measureMemory(t *testing.T, n, valueLen int, maxMemory int64) memCost {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%012d", i)
	}
	value := make([]byte, valueLen)
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	heap0 := heap()
	s, err := New(Config{MaxMemory: maxMemory})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := s.Set(SetRequest{Key: k, Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	heap1 := heap()
	mapped := s.residentMapped()
	if mapped < 0 {
		t.Skip("cannot tell which mapped pages are resident here")
	}
	if st := s.Stats(); st.Keys != int64(n) || st.Evictions != 0 {
		t.Fatalf("stats %+v", st)
	}
	runtime.KeepAlive(s)
	runtime.KeepAlive(keys)
	onHeap := float64(int64(heap1)-int64(heap0)) / float64(n)
	return memCost{
		store: onHeap + float64(mapped)/float64(n) - float64(16+valueLen),
		heap:  onHeap,
	}
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
			got := measureMemory(t, n, valueLen, tt.maxMemory)
			t.Logf("%s, %d entries: %.1f resident bytes per entry beyond key and value (%.1f of them on the Go heap); EntryOverhead %d",
				tt.name, n, got.store, got.heap, EntryOverhead)
			if got.store > 1.15*EntryOverhead || got.store < EntryOverhead/1.15 {
				t.Fatalf("measured %.1f bytes per entry, EntryOverhead %d is not within 1.15x of it", got.store, EntryOverhead)
			}
		})
	}
}

// TestOverheadAtOneMillion checks the target of issue 6: at most 80 bytes per
// entry beyond key and value with 1M entries, resident memory measured
// (block rounding in the arena included: 8+16 and 100+16 bytes are exact
// block sizes, so 120 is the 116-byte entry's).
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
			got := measureMemory(t, n, tt.valueLen, maxMemory)
			t.Logf("%d entries, %d-byte values: %.1f resident bytes per entry beyond key and value (%.1f on the Go heap)",
				n, tt.valueLen, got.store, got.heap)
			if got.store > limit {
				t.Errorf("the store takes %.1f bytes per entry beyond key and value, more than %d", got.store, limit)
			}
			if got.heap > 4 {
				t.Errorf("the store keeps %.1f bytes per entry on the Go heap; its entries belong off it", got.heap)
			}
		})
	}
}
