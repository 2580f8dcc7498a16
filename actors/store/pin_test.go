package store

import (
	"fmt"
	"testing"
)

// TestPinnedNeverEvicted: entries under Config.Pinned stay however much
// else is written, the others are evicted around them, and the queues stay
// consistent; with no pinned prefix the same key goes (the test can fail).
func TestPinnedNeverEvicted(t *testing.T) {
	size := int64(len("user-000") + 10 + EntryOverhead)
	for _, tc := range []struct {
		pinned string
		kept   bool
	}{
		{"\x00", true},
		{"", false},
	} {
		s, _ := newTestStore(t, Config{MaxMemory: 20 * size, Shards: 1, Pinned: tc.pinned})
		mustSet(t, s, SetRequest{Key: "\x00svc/web", Value: make([]byte, 10)})
		for i := range 500 {
			mustSet(t, s, SetRequest{Key: fmt.Sprintf("user-%03d", i), Value: make([]byte, 10)})
		}
		checkInvariants(t, s)
		if st := s.Stats(); tc.kept && (st.Pinned != 1 || st.Keys+st.Pinned > 20) {
			t.Errorf("stats: %d keys and %d pinned, want the pinned one apart", st.Keys, st.Pinned)
		}
		if _, err := s.Get("\x00svc/web"); (err == nil) != tc.kept {
			t.Errorf("pinned %q: get of the pinned key: %v, want kept=%v", tc.pinned, err, tc.kept)
		}
		if st := s.Stats(); st.Evictions == 0 || st.Bytes > 20*size {
			t.Errorf("pinned %q: %d evictions, %d bytes of %d: want eviction within the budget", tc.pinned, st.Evictions, st.Bytes, 20*size)
		}
		// Updating and deleting a pinned entry keeps the queues consistent.
		mustSet(t, s, SetRequest{Key: "\x00svc/web", Value: make([]byte, 12)})
		mustDelete(t, s, DeleteRequest{Key: "\x00svc/web"})
		checkInvariants(t, s)
	}
}
