package store

import (
	"errors"
	"testing"
	"time"
)

// TestPeek answers as Lookup does, and counts nothing.
func TestPeek(t *testing.T) {
	s, clock := newTestStore(t, Config{TombstoneTTL: time.Minute})
	mustSet(t, s, SetRequest{Key: "k", Value: []byte("v"), Flags: 1 << 40})
	mustSet(t, s, SetRequest{Key: "gone", Value: []byte("v")})
	del, err := s.Delete(DeleteRequest{Key: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, SetRequest{Key: "ttl", Value: []byte("v"), TTL: time.Second})
	before := s.Stats()
	clock.Advance(2 * time.Second)

	if e, _, err := s.Peek("k"); err != nil || string(e.Value) != "v" || e.Flags != 1<<40 {
		t.Errorf("Peek(k) = %+v, %v", e, err)
	}
	if _, deleted, err := s.Peek("gone"); !errors.Is(err, ErrNotFound) || deleted != del {
		t.Errorf("Peek(gone) = deleted %d, %v; want %d, not found", deleted, err, del)
	}
	for _, k := range []string{"ttl", "never"} {
		if _, _, err := s.Peek(k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Peek(%s) = %v, want not found", k, err)
		}
	}
	if after := s.Stats(); after.Hits != before.Hits || after.Misses != before.Misses || after.Expirations != before.Expirations || after.Keys != before.Keys {
		t.Errorf("Peek counted: before %+v, after %+v", before, after)
	}
}
