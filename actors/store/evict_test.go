package store

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Eviction passes over the keys Spare names while others may go, reports
// every entry it evicts, and still keeps every shard within its budget when
// only spared keys are left.
func TestEvictHooksSpareAndReport(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxMemory: MinShardBudget, Shards: 1})
	value := make([]byte, 16<<10)
	evicted := map[string]uint64{}
	s.SetEvictHooks(&EvictHooks{
		Spare:   func(key string) bool { return strings.HasPrefix(key, "copy/") },
		Evicted: func(key string, version uint64) { evicted[key] = version },
	})
	versions := map[string]uint64{}
	for i := range 500 { // 500 × 16 KiB, about 250 fit; one in five spared
		key := fmt.Sprintf("own/%03d", i)
		if i%5 == 0 {
			key = fmt.Sprintf("copy/%03d", i)
		}
		versions[key] = mustSet(t, s, SetRequest{Key: key, Value: value}).Version
	}
	st := s.Stats()
	if st.Evictions == 0 || int64(len(evicted)) != st.Evictions {
		t.Fatalf("%d evictions, %d reported", st.Evictions, len(evicted))
	}
	for key, v := range evicted {
		if strings.HasPrefix(key, "copy/") {
			t.Fatalf("spared key %s evicted while other keys could go", key)
		}
		if versions[key] != v {
			t.Fatalf("%s reported evicted at %d, written at %d", key, v, versions[key])
		}
	}
	checkInvariants(t, s)

	// Only spared keys: they go all the same, within the budget.
	s2, _ := newTestStore(t, Config{MaxMemory: MinShardBudget, Shards: 1})
	s2.SetEvictHooks(&EvictHooks{Spare: func(string) bool { return true }})
	for i := range 600 {
		mustSet(t, s2, SetRequest{Key: fmt.Sprintf("copy/%03d", i), Value: value})
		if st := s2.Stats(); st.Bytes > MinShardBudget {
			t.Fatalf("over the limit with only spared keys: %d bytes", st.Bytes)
		}
	}
	if s2.Stats().Evictions == 0 {
		t.Fatal("nothing evicted")
	}
	checkInvariants(t, s2)
}

// Evict removes an entry at the version given or older, never a newer
// one, leaves no tombstone, and removes a tombstone as well.
func TestEvictIsVersionConditional(t *testing.T) {
	s, _ := newTestStore(t, Config{TombstoneTTL: 60e9})
	heard := 0
	s.SetEvictHooks(&EvictHooks{Evicted: func(string, uint64) { heard++ }})
	e1 := mustSet(t, s, SetRequest{Key: "k", Value: []byte("1")})
	e2 := mustSet(t, s, SetRequest{Key: "k", Value: []byte("2")})
	if s.Evict("k", e1.Version) {
		t.Fatal("an eviction of an older version removed a newer write")
	}
	if e, err := s.Get("k"); err != nil || e.Version != e2.Version {
		t.Fatalf("after the refused eviction: %+v %v", e, err)
	}
	if !s.Evict("k", e2.Version) {
		t.Fatal("the eviction of the version held removed nothing")
	}
	if _, v, err := s.Lookup("k"); err != ErrNotFound || v != 0 {
		t.Fatalf("an eviction left %d (%v): a tombstone", v, err)
	}
	if st := s.Stats(); st.Evictions != 1 || st.Tombstones != 0 {
		t.Fatalf("stats after Evict: %+v", st)
	}
	mustSet(t, s, SetRequest{Key: "d", Value: []byte("x")})
	v, _, err := s.Remove(DeleteRequest{Key: "d"})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Evict("d", v) || s.Stats().Tombstones != 0 {
		t.Fatal("a tombstone at the version evicted stays")
	}
	if s.Evict("absent", 1<<60) {
		t.Fatal("evicted an absent key")
	}
	if heard != 0 {
		t.Fatalf("Evict told the Evicted hook %d times: it is for the store's own evictions", heard)
	}
	checkInvariants(t, s)
}

// BenchmarkSetEvicting measures a set that evicts: without hooks; with
// an Evicted hook that queues every eviction under a mutex, as the
// replicator's does, and a Spare that spares nothing; and with one key in
// two spared (copies), which their primary evicts as fast as this node
// evicts its own (an Evict of the copy written a shard's worth of sets
// before).
func BenchmarkSetEvicting(b *testing.B) {
	for _, mode := range []string{"none", "report", "spare-half"} {
		b.Run("hooks="+mode, func(b *testing.B) {
			s, err := New(Config{MaxMemory: MinShardBudget, Shards: 1})
			if err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			var queued []string
			spare := func(key string) bool { return mode == "spare-half" && key[len(key)-1]&1 == 0 }
			if mode != "none" {
				s.SetEvictHooks(&EvictHooks{
					Spare: spare,
					Evicted: func(key string, _ uint64) {
						mu.Lock()
						if queued = append(queued, key); len(queued) > 4096 {
							queued = queued[:0]
						}
						mu.Unlock()
					},
				})
			}
			value := make([]byte, 1000)
			const window = MinShardBudget / (1000 + EntryOverhead + 8) // sets the shard holds
			b.ResetTimer()
			for i := range b.N {
				key := fmt.Sprintf("k%d", i)
				e, err := s.Set(SetRequest{Key: key, Value: value})
				if err != nil {
					b.Fatal(err)
				}
				if old := fmt.Sprintf("k%d", i-window); i >= window && spare(old) {
					s.Evict(old, e.Version) // its primary evicted it
				}
			}
		})
	}
}
