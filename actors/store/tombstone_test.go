package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func mustDelete(t *testing.T, s *Store, req DeleteRequest) uint64 {
	t.Helper()
	v, err := s.Delete(req)
	if err != nil {
		t.Fatalf("Delete(%q): %v", req.Key, err)
	}
	return v
}

func TestDeleteLeavesAnInvisibleTombstone(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	a := mustSet(t, s, SetRequest{Key: "app/a", Value: []byte("1"), Flags: 7})
	mustSet(t, s, SetRequest{Key: "app/b", Value: []byte("2")})
	del := mustDelete(t, s, DeleteRequest{Key: "app/a"})
	if del <= a.Version {
		t.Fatalf("delete version %d not above the key's %d", del, a.Version)
	}

	if _, err := s.Get("app/a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a deleted key: %v", err)
	}
	if _, deleted, err := s.Lookup("app/a"); !errors.Is(err, ErrNotFound) || deleted != del {
		t.Fatalf("Lookup of a deleted key = %d, %v; want its delete's version %d", deleted, err, del)
	}
	if _, deleted, err := s.Lookup("never"); !errors.Is(err, ErrNotFound) || deleted != 0 {
		t.Fatalf("Lookup of a key never written = %d, %v", deleted, err)
	}
	if e, deleted, err := s.Lookup("app/b"); err != nil || deleted != 0 || string(e.Value) != "2" {
		t.Fatalf("Lookup of a live key = %+v, %d, %v", e, deleted, err)
	}
	if entries, _ := s.Scan("app/", "", 0, false); len(entries) != 1 || entries[0].Key != "app/b" {
		t.Fatalf("Scan lists %+v, want only app/b", entries)
	}
	st := s.Stats()
	want := Stats{Keys: 1, Bytes: int64(len("app/b")+1) + EntryOverhead, Tombstones: 1, TombstoneBytes: int64(len("app/a")) + EntryOverhead, Sets: 2, Deletes: 1, Misses: 3, Hits: 1}
	if st != want {
		t.Fatalf("stats %+v\nwant  %+v", st, want)
	}
	if got := s.MaxVersion("app/"); got != del {
		t.Fatalf("MaxVersion(app/) = %d, want the delete's %d", got, del)
	}
	checkInvariants(t, s)
}

func TestSetOverTombstone(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	old := mustSet(t, s, SetRequest{Key: "k", Value: []byte("old"), TTL: time.Hour})
	del := mustDelete(t, s, DeleteRequest{Key: "k"})

	// A tombstone is absent for CAS: a non-zero CAS fails, even the old version.
	if _, err := s.Set(SetRequest{Key: "k", Value: []byte("x"), CheckCAS: true, CAS: old.Version}); !errors.Is(err, ErrCASMismatch) {
		t.Fatalf("CAS on the deleted key's old version: %v", err)
	}
	if _, err := s.Delete(DeleteRequest{Key: "k", CheckCAS: true, CAS: del}); !errors.Is(err, ErrCASMismatch) {
		t.Fatalf("delete with CAS = the tombstone's version: %v", err)
	}
	// Deleting it again succeeds and changes nothing.
	again := mustDelete(t, s, DeleteRequest{Key: "k", CheckCAS: true, CAS: 0})
	if _, deleted, _ := s.Lookup("k"); deleted != del {
		t.Fatalf("a second delete moved the tombstone from %d to %d (its own version %d)", del, deleted, again)
	}

	e := mustSet(t, s, SetRequest{Key: "k", Value: []byte("new"), Flags: 3, CheckCAS: true, CAS: 0})
	if e.Version <= again || e.Created != e.Version {
		t.Fatalf("recreated key: version %d created %d; want a fresh version above %d", e.Version, e.Created, again)
	}
	got, deleted, err := s.Lookup("k")
	if err != nil || deleted != 0 || string(got.Value) != "new" || got.Flags != 3 || got.Expires != 0 {
		t.Fatalf("Lookup after recreating = %+v, %d, %v", got, deleted, err)
	}
	if st := s.Stats(); st.Keys != 1 || st.Tombstones != 0 || st.TombstoneBytes != 0 || st.Bytes != int64(1+3)+EntryOverhead {
		t.Fatalf("stats %+v", st)
	}
	checkInvariants(t, s)
}

func TestTombstonesAreSweptAfterTheirTTL(t *testing.T) {
	s, clock := newTestStore(t, Config{TombstoneTTL: time.Minute})
	s.Start()
	mustSet(t, s, SetRequest{Key: "p/a", Value: []byte("1")})
	keep := mustSet(t, s, SetRequest{Key: "p/b", Value: []byte("1")})
	del := mustDelete(t, s, DeleteRequest{Key: "p/a"})
	ctx := context.Background()

	clock.Advance(59 * time.Second)
	if _, err := s.AskSweep(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Tombstones != 1 || s.MaxVersion("p/") != del {
		t.Fatalf("tombstone gone before its TTL: %+v, MaxVersion %d", st, s.MaxVersion("p/"))
	}
	clock.Advance(time.Second)
	if n, err := s.AskSweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep = %d, %v; tombstones are not expirations", n, err)
	}
	if st := s.Stats(); st.Tombstones != 0 || st.TombstoneBytes != 0 || st.Keys != 1 || st.Expirations != 0 {
		t.Fatalf("after the TTL: %+v", st)
	}
	if got := s.MaxVersion("p/"); got != keep.Version {
		t.Fatalf("MaxVersion after the sweep = %d, want the live key's %d", got, keep.Version)
	}
	if _, deleted, _ := s.Lookup("p/a"); deleted != 0 {
		t.Fatalf("Lookup still reports a swept tombstone at %d", deleted)
	}
	checkInvariants(t, s)
}

func TestNegativeTombstoneTTLKeepsNone(t *testing.T) {
	s, _ := newTestStore(t, Config{TombstoneTTL: -1})
	mustSet(t, s, SetRequest{Key: "k", Value: []byte("v")})
	mustDelete(t, s, DeleteRequest{Key: "k"})
	if st := s.Stats(); st.Tombstones != 0 || st.Bytes != 0 || st.Deletes != 1 {
		t.Fatalf("stats %+v", st)
	}
	if got := s.MaxVersion(""); got != 0 {
		t.Fatalf("MaxVersion = %d with nothing kept", got)
	}
	checkInvariants(t, s)
}

func TestExpiryLeavesNoTombstone(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	mustSet(t, s, SetRequest{Key: "k", Value: []byte("v"), TTL: time.Second})
	clock.Advance(time.Second)
	if _, err := s.Delete(DeleteRequest{Key: "k"}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Tombstones != 0 || st.Expirations != 1 || st.Deletes != 0 {
		t.Fatalf("stats %+v", st)
	}
	checkInvariants(t, s)
}

func TestTombstonesAreEvictedFirst(t *testing.T) {
	const budget = 4000
	s, _ := newTestStore(t, Config{MaxMemory: budget, Shards: 1})
	value := make([]byte, 300)
	for i := range 8 { // 8 × (2+300+104) = 3248 bytes
		mustSet(t, s, SetRequest{Key: fmt.Sprintf("k%d", i), Value: value})
	}
	for i := range 4 { // 4 tombstones of 2+EntryOverhead bytes
		mustDelete(t, s, DeleteRequest{Key: fmt.Sprintf("k%d", i)})
	}
	// 4 live entries (1624 bytes) and 4 tombstones (424 bytes) are held. An
	// entry of 2276 bytes fits beside the live entries but not beside the
	// tombstones too: they must go, and no live entry.
	mustSet(t, s, SetRequest{Key: "big", Value: make([]byte, budget-4*406-EntryOverhead-3-100)})
	st := s.Stats()
	if st.Evictions != 0 || st.Keys != 5 {
		t.Fatalf("a live entry was evicted while tombstones could go: %+v", st)
	}
	if st.Tombstones >= 4 {
		t.Fatalf("no tombstone was evicted: %+v", st)
	}
	if st.Bytes+st.TombstoneBytes > budget {
		t.Fatalf("over budget: %+v", st)
	}
	checkInvariants(t, s)
}

func TestDropTakesTombstones(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	mustSet(t, s, SetRequest{Key: "a", Value: []byte("v")})
	mustSet(t, s, SetRequest{Key: "b", Value: []byte("v")})
	mustDelete(t, s, DeleteRequest{Key: "b"})
	if n := s.Drop(func(string) bool { return true }); n != 1 {
		t.Fatalf("Drop counted %d live entries, want 1", n)
	}
	if st := s.Stats(); st.Keys != 0 || st.Tombstones != 0 || st.Bytes != 0 || st.TombstoneBytes != 0 {
		t.Fatalf("stats %+v", st)
	}
	checkInvariants(t, s)
}

func TestMaxVersion(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	if got := s.MaxVersion(""); got != 0 {
		t.Fatalf("empty store: MaxVersion %d", got)
	}
	a := mustSet(t, s, SetRequest{Key: "a/1", Value: []byte("v")})
	b := mustSet(t, s, SetRequest{Key: "b/1", Value: []byte("v")})
	a2 := mustSet(t, s, SetRequest{Key: "a/2", Value: []byte("v")})
	tests := []struct {
		prefix string
		want   uint64
	}{
		{"", a2.Version},
		{"a/", a2.Version},
		{"a/1", a.Version},
		{"b", b.Version},
		{"c", 0},
	}
	for _, tt := range tests {
		if got := s.MaxVersion(tt.prefix); got != tt.want {
			t.Errorf("MaxVersion(%q) = %d, want %d", tt.prefix, got, tt.want)
		}
	}
	del := mustDelete(t, s, DeleteRequest{Key: "b/1"})
	if got := s.MaxVersion("b"); got != del {
		t.Errorf("after delete: MaxVersion(b) = %d, want %d", got, del)
	}
	if got := s.MaxVersion(""); got != del {
		t.Errorf("after delete: MaxVersion() = %d, want %d", got, del)
	}
}

func TestNotify(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	var mu sync.Mutex
	var got []Change
	s.Notify(func(c Change) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	})
	e := mustSet(t, s, SetRequest{Key: "k", Value: []byte("v")})
	if _, err := s.Set(SetRequest{Key: "k", CheckCAS: true, CAS: 0}); !errors.Is(err, ErrCASMismatch) {
		t.Fatal(err)
	}
	d := mustDelete(t, s, DeleteRequest{Key: "k"})
	mustDelete(t, s, DeleteRequest{Key: "k"})       // absent: no change
	mustDelete(t, s, DeleteRequest{Key: "missing"}) // absent: no change
	ttl := mustSet(t, s, SetRequest{Key: "t", Value: []byte("v"), TTL: time.Second})
	clock.Advance(time.Second)
	if _, err := s.Get("t"); !errors.Is(err, ErrNotFound) { // expires: no change
		t.Fatal(err)
	}
	s.Notify(nil)
	mustSet(t, s, SetRequest{Key: "quiet", Value: []byte("v")})

	mu.Lock()
	defer mu.Unlock()
	want := []Change{{Key: "k", Version: e.Version}, {Key: "k", Version: d, Deleted: true}, {Key: "t", Version: ttl.Version}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes %+v\nwant    %+v", got, want)
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxMemory: 1 << 20})
	s.Notify(func(Change) {})
	value := []byte("value")
	buf := make([]byte, 0, 64)
	mustSet(t, s, SetRequest{Key: "hot", Value: value})
	mustSet(t, s, SetRequest{Key: "gone", Value: value})
	mustDelete(t, s, DeleteRequest{Key: "gone"})
	tests := []struct {
		name string
		op   func()
	}{
		{"get into a buffer", func() { _, _ = s.GetAppend("hot", buf[:0]) }},
		{"get of a tombstone", func() { _, _ = s.Get("gone") }},
		{"lookup", func() { _, _, _ = s.Lookup("gone") }},
		{"overwrite", func() { _, _ = s.Set(SetRequest{Key: "hot", Value: value}) }},
		{"set over a tombstone, delete again", func() {
			_, _ = s.Set(SetRequest{Key: "gone", Value: value})
			_, _ = s.Delete(DeleteRequest{Key: "gone"})
		}},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.op); n != 0 {
			t.Errorf("%s: %.1f allocations per run, want 0", tt.name, n)
		}
	}
	// Get copies the value out of the arena: that copy is its one allocation.
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Get("hot") }); n != 1 {
		t.Errorf("get: %.1f allocations per run, want 1 (the value's copy)", n)
	}
	checkInvariants(t, s)
}

func TestConcurrentUseWithTombstones(t *testing.T) {
	s, clock := newTestStore(t, Config{MaxMemory: 64 << 10, Shards: 4, TombstoneTTL: time.Second})
	tick := manualTicker(s)
	s.Start()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 3000 {
				key := fmt.Sprintf("k%d", (i*7+w)%200)
				switch i % 3 {
				case 0, 1:
					if _, err := s.Set(SetRequest{Key: key, Value: make([]byte, i%150)}); err != nil {
						t.Error(err)
						return
					}
				default:
					if _, err := s.Delete(DeleteRequest{Key: key}); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		for range 30 {
			clock.Advance(100 * time.Millisecond)
			tick <- clock.Now()
		}
	})
	wg.Wait()
	checkInvariants(t, s)
	if st := s.Stats(); st.Bytes+st.TombstoneBytes > 64<<10 {
		t.Fatalf("over budget: %+v", st)
	}
}
