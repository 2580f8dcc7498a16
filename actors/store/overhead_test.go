package store

import (
	"fmt"
	"runtime"
	"testing"
)

// heapPerEntry inserts n entries with 16-byte keys and 32-byte values (exact
// Go size classes, so no rounding hides in the figure) and returns the heap
// growth per entry beyond the key and value bytes.
func heapPerEntry(t *testing.T, n int, maxMemory int64) float64 {
	t.Helper()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%012d", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	s, err := New(Config{MaxMemory: maxMemory})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, err := s.Set(SetRequest{Key: k, Value: make([]byte, 32)}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if st := s.Stats(); st.Keys != int64(n) || st.Evictions != 0 {
		t.Fatalf("stats %+v", st)
	}
	runtime.KeepAlive(s)
	runtime.KeepAlive(keys)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n) - 16 - 32
}

func TestEntryOverheadIsHonest(t *testing.T) {
	const n = 200_000
	tests := []struct {
		name      string
		maxMemory int64
	}{
		// The limit leaves room for all n, so the ghost is sized but nothing is evicted.
		{"bounded", 2 * n * (16 + 32 + EntryOverhead)},
		{"unbounded", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := heapPerEntry(t, n, tt.maxMemory)
			t.Logf("%s, %d entries: %.1f heap bytes per entry beyond key and value; EntryOverhead %d", tt.name, n, got, EntryOverhead)
			if got > 1.3*EntryOverhead || got < EntryOverhead/1.3 {
				t.Fatalf("measured %.1f bytes per entry, EntryOverhead %d is not within 1.3x of it", got, EntryOverhead)
			}
		})
	}
}
