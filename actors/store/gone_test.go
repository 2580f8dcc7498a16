package store

import (
	"fmt"
	"testing"
	"time"
)

// TestNotifyGone: every way a live key leaves on its own is reported once,
// with its reason; deletes are not.
func TestNotifyGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		do   func(t *testing.T, s *Store, clock *ManualClock)
		want []Gone
	}{
		{name: "expired, found by a get", cfg: Config{}, do: func(t *testing.T, s *Store, clock *ManualClock) {
			mustSet(t, s, SetRequest{Key: "a", Value: []byte("1"), TTL: time.Second})
			clock.Advance(2 * time.Second)
			_, _ = s.Get("a")
		}, want: []Gone{{Key: "a", Reason: GoneExpired}}},
		{name: "expired, found by a write", cfg: Config{}, do: func(t *testing.T, s *Store, clock *ManualClock) {
			mustSet(t, s, SetRequest{Key: "a", Value: []byte("1"), TTL: time.Second})
			clock.Advance(2 * time.Second)
			mustSet(t, s, SetRequest{Key: "a", Value: []byte("2")})
		}, want: []Gone{{Key: "a", Reason: GoneExpired}}},
		{name: "expired, found by the sweep", cfg: Config{}, do: func(t *testing.T, s *Store, clock *ManualClock) {
			mustSet(t, s, SetRequest{Key: "a", Value: []byte("1"), TTL: time.Second})
			mustSet(t, s, SetRequest{Key: "b", Value: []byte("1")})
			clock.Advance(2 * time.Second)
			s.sweep()
		}, want: []Gone{{Key: "a", Reason: GoneExpired}}},
		{name: "evicted", cfg: Config{MaxMemory: 2000, Shards: 1, TombstoneTTL: -1}, do: func(t *testing.T, s *Store, clock *ManualClock) {
			for i := range 20 {
				mustSet(t, s, SetRequest{Key: fmt.Sprintf("k%02d", i), Value: make([]byte, 100)})
			}
		}, want: []Gone{{Key: "k00", Reason: GoneEvicted}}},
		{name: "a delete is not gone", cfg: Config{}, do: func(t *testing.T, s *Store, clock *ManualClock) {
			mustSet(t, s, SetRequest{Key: "a", Value: []byte("1"), TTL: time.Second})
			_, _ = s.Delete(DeleteRequest{Key: "a"})
			clock.Advance(2 * time.Second)
			s.sweep()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := newTestStore(t, tc.cfg)
			var got []Gone
			s.NotifyGone(func(g Gone) { got = append(got, Gone{Key: g.Key, Reason: g.Reason}) })
			tc.do(t, s, clock)
			if len(tc.want) == 0 && len(got) != 0 || len(tc.want) > 0 && (len(got) == 0 || got[0] != tc.want[0]) {
				t.Fatalf("gone = %v, want %v first", got, tc.want)
			}
			if tc.want != nil && tc.want[0].Reason == GoneExpired && len(got) != 1 {
				t.Fatalf("gone = %v, want one", got)
			}
			s.NotifyGone(nil)
		})
	}
}

// TestKeepTTL: a write with KeepTTL keeps the live entry's expiry; a key it
// creates gets TTL.
func TestKeepTTL(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	first := mustSet(t, s, SetRequest{Key: "a", Value: []byte("1"), TTL: 10 * time.Second})
	clock.Advance(5 * time.Second)
	e := mustSet(t, s, SetRequest{Key: "a", Value: []byte("2"), TTL: time.Hour, KeepTTL: true})
	if e.Expires != first.Expires {
		t.Fatalf("expiry %d, want the first's %d", e.Expires, first.Expires)
	}
	created := mustSet(t, s, SetRequest{Key: "b", Value: []byte("1"), TTL: time.Second, KeepTTL: true})
	if created.Expires != clock.Now().Add(time.Second).UnixNano() {
		t.Fatalf("a created key's expiry %d, want TTL from now", created.Expires)
	}
}
