package store

import (
	"errors"
	"fmt"
	"testing"
)

// TestSetMaxMemory: lowering the limit evicts down to it at once, raising or
// lifting it evicts nothing and lets the store grow again, and limits below
// MinLimit are refused with the data untouched.
func TestSetMaxMemory(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxMemory: 64 * MinShardBudget, Shards: 4})
	value := make([]byte, 64<<10)
	for i := range 2000 { // 2000 × 64 KiB: fills the 256 MiB limit about half
		mustSet(t, s, SetRequest{Key: fmt.Sprintf("k%04d", i), Value: value})
	}
	full := s.Stats()
	if full.Evictions != 0 || full.MaxBytes != 64*MinShardBudget {
		t.Fatalf("before: %+v", full)
	}

	limit := int64(4 * MinShardBudget) // 16 MiB
	evicted, err := s.SetMaxMemory(limit)
	if err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Bytes+st.TombstoneBytes > limit || st.MaxBytes != limit || evicted == 0 || st.Evictions != evicted || st.Keys != full.Keys-evicted {
		t.Fatalf("after lowering to %d: %d bytes, max %d, %d evicted (stats say %d), keys %d of %d", limit, st.Bytes, st.MaxBytes, evicted, st.Evictions, st.Keys, full.Keys)
	}
	if err := s.check(); err != nil {
		t.Fatal(err)
	}
	// Writes keep working within the new limit.
	for i := range 500 {
		mustSet(t, s, SetRequest{Key: fmt.Sprintf("new%04d", i), Value: value})
	}
	if st := s.Stats(); st.Bytes > limit {
		t.Fatalf("writes went over the new limit: %d > %d", st.Bytes, limit)
	}

	if _, err := s.SetMaxMemory(MinShardBudget); !errors.Is(err, ErrConfig) {
		t.Fatalf("limit below MinLimit: err %v", err)
	}
	if st := s.Stats(); st.MaxBytes != limit {
		t.Fatalf("a refused limit changed MaxBytes to %d", st.MaxBytes)
	}

	if evicted, err := s.SetMaxMemory(0); err != nil || evicted != 0 {
		t.Fatalf("lifting the limit: %d evicted, %v", evicted, err)
	}
	for i := range 1000 {
		mustSet(t, s, SetRequest{Key: fmt.Sprintf("more%04d", i), Value: value})
	}
	if st := s.Stats(); st.Bytes <= limit || st.MaxBytes != 0 {
		t.Fatalf("unlimited store did not grow past the old limit: %d bytes, max %d", st.Bytes, st.MaxBytes)
	}
}

// check runs the shard invariants of every shard.
func (s *Store) check() error {
	for i := range s.shards {
		if err := s.shards[i].check(); err != nil {
			return err
		}
	}
	return nil
}
