package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustApply(t *testing.T, s *Store, r Record) bool {
	t.Helper()
	applied, err := s.Apply(r)
	if err != nil {
		t.Fatalf("Apply(%+v): %v", r, err)
	}
	return applied
}

// lookupState is what Lookup tells about a key, comparable between stores.
type lookupState struct {
	Entry   Entry
	Deleted uint64
	Err     error
}

func lookupOf(s *Store, key string) lookupState {
	e, deleted, err := s.Lookup(key)
	return lookupState{e, deleted, err}
}

func TestApplyLastWriterWins(t *testing.T) {
	const held = 100
	expires := epoch.Add(time.Hour).UnixNano()
	live := func(v uint64, value string) Record {
		return Record{Key: "k", Value: []byte(value), Version: v, Created: 50, Flags: 1<<40 | 7, Expires: expires}
	}
	del := func(v uint64) Record { return Record{Key: "k", Version: v, Deleted: true} }
	heldLive := lookupState{Entry: Entry{Key: "k", Value: []byte("held"), Version: held, Created: 50, Flags: 1<<40 | 7, Expires: expires}}
	heldTomb := lookupState{Deleted: held, Err: ErrNotFound}
	tests := []struct {
		name        string
		held        *Record // nil = the key is absent
		r           Record
		wantApplied bool
		want        lookupState
	}{
		{"older set over a live entry", &Record{}, live(held-1, "new"), false, heldLive},
		{"equal set over a live entry", &Record{}, live(held, "new"), false, heldLive},
		{"newer set over a live entry", &Record{}, live(held+1, "new"), true, lookupState{Entry: Entry{Key: "k", Value: []byte("new"), Version: held + 1, Created: 50, Flags: 1<<40 | 7, Expires: expires}}},
		{"older delete of a live entry", &Record{}, del(held - 1), false, heldLive},
		{"equal delete of a live entry", &Record{}, del(held), false, heldLive},
		{"newer delete of a live entry", &Record{}, del(held + 1), true, lookupState{Deleted: held + 1, Err: ErrNotFound}},
		{"older set over a tombstone", &Record{Deleted: true}, live(held-1, "new"), false, heldTomb},
		{"equal set over a tombstone", &Record{Deleted: true}, live(held, "new"), false, heldTomb},
		{"newer set over a tombstone", &Record{Deleted: true}, live(held+1, "new"), true, lookupState{Entry: Entry{Key: "k", Value: []byte("new"), Version: held + 1, Created: 50, Flags: 1<<40 | 7, Expires: expires}}},
		{"older delete over a tombstone", &Record{Deleted: true}, del(held - 1), false, heldTomb},
		{"equal delete over a tombstone", &Record{Deleted: true}, del(held), false, heldTomb},
		{"newer delete over a tombstone", &Record{Deleted: true}, del(held + 1), true, lookupState{Deleted: held + 1, Err: ErrNotFound}},
		{"set of an absent key", nil, Record{Key: "k", Value: []byte("new"), Version: 5, Created: 3}, true, lookupState{Entry: Entry{Key: "k", Value: []byte("new"), Version: 5, Created: 3}}},
		{"delete of an absent key", nil, del(5), true, lookupState{Deleted: 5, Err: ErrNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestStore(t, Config{})
			if tt.held != nil {
				h := live(held, "held")
				if tt.held.Deleted {
					h = del(held)
				}
				mustApply(t, s, h)
			}
			if got := mustApply(t, s, tt.r); got != tt.wantApplied {
				t.Errorf("applied = %v, want %v", got, tt.wantApplied)
			}
			if got := lookupOf(s, "k"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Lookup = %+v\nwant     %+v", got, tt.want)
			}
			checkInvariants(t, s)
		})
	}
}

func TestApplyDeleteOfAbsentKeyLeavesTombstone(t *testing.T) {
	s, clock := newTestStore(t, Config{TombstoneTTL: time.Minute})
	const v = 1000
	if !mustApply(t, s, Record{Key: "app/gone", Version: v, Deleted: true, Value: []byte("ignored")}) {
		t.Fatal("delete of an absent key not applied")
	}
	if got := lookupOf(s, "app/gone"); got.Deleted != v || !errors.Is(got.Err, ErrNotFound) {
		t.Fatalf("Lookup = %+v, want the tombstone at %d", got, v)
	}
	if got := s.MaxVersion("app/"); got != v {
		t.Fatalf("MaxVersion = %d, want %d", got, v)
	}
	want := Stats{Tombstones: 1, TombstoneBytes: int64(len("app/gone")) + EntryOverhead, Misses: 1}
	if st := s.Stats(); st != want {
		t.Fatalf("stats %+v\nwant  %+v", st, want)
	}
	// The tombstone refuses a set that was made before the delete.
	if mustApply(t, s, Record{Key: "app/gone", Value: []byte("stale"), Version: v - 1, Created: v - 1}) {
		t.Fatal("a set older than the tombstone was applied")
	}
	if _, err := s.Get("app/gone"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after a refused stale set: %v", err)
	}
	checkInvariants(t, s)

	// It lasts TombstoneTTL, like a delete's.
	clock.Advance(time.Minute - 1)
	s.sweep()
	if got := s.MaxVersion(""); got != v {
		t.Fatalf("tombstone gone before its TTL: MaxVersion %d", got)
	}
	clock.Advance(1)
	s.sweep()
	if st := s.Stats(); st.Tombstones != 0 || st.TombstoneBytes != 0 || s.MaxVersion("") != 0 {
		t.Fatalf("tombstone kept after its TTL: %+v", st)
	}
	checkInvariants(t, s)
}

func TestApplyKeepsNoTombstonesWhenTheConfigSaysSo(t *testing.T) {
	s, _ := newTestStore(t, Config{TombstoneTTL: -1})
	if mustApply(t, s, Record{Key: "absent", Version: 10, Deleted: true}) {
		t.Fatal("a delete of an absent key with nothing to keep reports applied")
	}
	mustApply(t, s, Record{Key: "k", Value: []byte("v"), Version: 10, Created: 10})
	if !mustApply(t, s, Record{Key: "k", Version: 11, Deleted: true}) {
		t.Fatal("a delete of a present key was not applied")
	}
	if st := s.Stats(); st.Keys != 0 || st.Tombstones != 0 || st.Bytes != 0 || st.Deletes != 1 || st.Sets != 1 {
		t.Fatalf("stats %+v", st)
	}
	checkInvariants(t, s)
}

func TestApplyCounters(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	mustApply(t, s, Record{Key: "a", Value: []byte("1"), Version: 10, Created: 10}) // a set
	mustApply(t, s, Record{Key: "a", Value: []byte("2"), Version: 11, Created: 10}) // a set
	mustApply(t, s, Record{Key: "a", Value: []byte("0"), Version: 9, Created: 9})   // refused
	mustApply(t, s, Record{Key: "a", Version: 12, Deleted: true})                   // a delete of a present key
	mustApply(t, s, Record{Key: "a", Version: 13, Deleted: true})                   // a newer tombstone: no delete
	mustApply(t, s, Record{Key: "b", Version: 14, Deleted: true})                   // a tombstone of an absent key: no delete
	want := Stats{Tombstones: 2, TombstoneBytes: 2 * (1 + EntryOverhead), Sets: 2, Deletes: 1}
	if st := s.Stats(); st != want {
		t.Fatalf("stats %+v\nwant  %+v", st, want)
	}
	checkInvariants(t, s)
}

func TestApplyDoesNotNotify(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	var changes atomic.Int64
	s.Notify(func(Change) { changes.Add(1) })
	mustApply(t, s, Record{Key: "k", Value: []byte("v"), Version: 10, Created: 10})
	mustApply(t, s, Record{Key: "k", Value: []byte("w"), Version: 11, Created: 10})
	mustApply(t, s, Record{Key: "k", Version: 12, Deleted: true})
	mustApply(t, s, Record{Key: "absent", Version: 13, Deleted: true})
	if n := changes.Load(); n != 0 {
		t.Fatalf("Apply announced %d changes", n)
	}
	mustSet(t, s, SetRequest{Key: "k", Value: []byte("local")})
	if n := changes.Load(); n != 1 {
		t.Fatalf("the hook saw %d changes of a local Set, want 1", n)
	}
}

func TestApplyObservesItsVersion(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	ahead := uint64(epoch.Add(time.Hour).UnixMicro()) // a peer whose clock runs an hour ahead
	tests := []struct {
		name string
		r    Record
	}{
		{"applied set", Record{Key: "k", Value: []byte("v"), Version: ahead, Created: ahead}},
		{"refused set", Record{Key: "k", Value: []byte("v"), Version: ahead, Created: ahead}},
		{"delete", Record{Key: "d", Version: ahead + 10, Deleted: true}},
		{"expired set", Record{Key: "x", Value: []byte("v"), Version: ahead + 20, Created: ahead + 20, Expires: epoch.UnixNano()}},
		{"invalid record", Record{Value: []byte("v"), Version: ahead + 30, Created: ahead + 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Apply(tt.r)
			if e := mustSet(t, s, SetRequest{Key: "k", Value: []byte("local")}); e.Version <= tt.r.Version {
				t.Fatalf("Set after Apply at %d got version %d", tt.r.Version, e.Version)
			}
			if v := mustDelete(t, s, DeleteRequest{Key: "other"}); v <= tt.r.Version {
				t.Fatalf("Delete after Apply at %d got version %d", tt.r.Version, v)
			}
		})
	}
}

func TestApplyExpiredRecord(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	past, future := epoch.Add(-time.Second).UnixNano(), epoch.Add(time.Second).UnixNano()

	if mustApply(t, s, Record{Key: "new", Value: []byte("v"), Version: 10, Created: 10, Expires: past}) {
		t.Fatal("an expired record was applied")
	}
	if _, err := s.Get("new"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an expired record is readable: %v", err)
	}

	// A newer expired record removes the older entry: where it was written,
	// the write replaced that entry and then expired.
	mustApply(t, s, Record{Key: "old", Value: []byte("v"), Version: 10, Created: 10})
	mustApply(t, s, Record{Key: "old", Value: []byte("v"), Version: 9, Created: 9, Expires: past}) // older: refused, changes nothing
	if _, err := s.Get("old"); err != nil {
		t.Fatalf("an older expired record removed a newer entry: %v", err)
	}
	if mustApply(t, s, Record{Key: "old", Value: []byte("w"), Version: 11, Created: 10, Expires: past}) {
		t.Fatal("an expired record was applied")
	}
	if got := lookupOf(s, "old"); !errors.Is(got.Err, ErrNotFound) || got.Deleted != 0 {
		t.Fatalf("Lookup after a newer expired record = %+v, want absent without a tombstone", got)
	}
	if st := s.Stats(); st.Keys != 0 || st.Tombstones != 0 || st.Bytes != 0 || st.Sets != 1 || st.Expirations != 1 {
		t.Fatalf("stats %+v", st)
	}

	// A record that expires later is stored, and expires like a Set's.
	if !mustApply(t, s, Record{Key: "ttl", Value: []byte("v"), Version: 20, Created: 20, Expires: future}) {
		t.Fatal("a record with a future expiry was not applied")
	}
	if e, err := s.Get("ttl"); err != nil || e.Expires != future {
		t.Fatalf("Get = %+v, %v", e, err)
	}
	checkInvariants(t, s) // counts the entry with an expiry
	clock.Advance(time.Second)
	if _, err := s.Get("ttl"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after the expiry: %v", err)
	}
	// An expired entry is absent: an older record now takes its place.
	if !mustApply(t, s, Record{Key: "ttl", Value: []byte("older"), Version: 15, Created: 15}) {
		t.Fatal("a record over an expired entry was refused")
	}
	checkInvariants(t, s)
}

func TestApplyInvalid(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxMemory: 4096, Shards: 2}) // 2048 bytes per shard
	tests := []struct {
		name string
		r    Record
		want error
	}{
		{"empty key", Record{Value: []byte("v"), Version: 1, Created: 1}, ErrInvalid},
		{"key over MaxKeyLen", Record{Key: strings.Repeat("k", MaxKeyLen+1), Version: 1, Deleted: true}, ErrInvalid},
		{"version 0", Record{Key: "k", Value: []byte("v"), Created: 1}, ErrInvalid},
		{"delete at version 0", Record{Key: "k", Deleted: true}, ErrInvalid},
		{"created 0", Record{Key: "k", Value: []byte("v"), Version: 1}, ErrInvalid},
		{"created after the version", Record{Key: "k", Value: []byte("v"), Version: 1, Created: 2}, ErrInvalid},
		{"entry over a shard", Record{Key: "k", Value: make([]byte, 2048-EntryOverhead), Version: 1, Created: 1}, ErrTooLarge},
		{"tombstone over a shard", Record{Key: strings.Repeat("k", 2048-EntryOverhead+1), Version: 1, Deleted: true}, ErrTooLarge},
	}
	for _, tt := range tests {
		if _, err := s.Apply(tt.r); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if st := s.Stats(); st.Keys != 0 || st.Tombstones != 0 || st.Sets != 0 {
		t.Fatalf("invalid records changed the store: %+v", st)
	}
	// A tombstone is smaller than the entry of the same key: it fits.
	mustApply(t, s, Record{Key: "k", Version: 1, Deleted: true, Value: make([]byte, 4096)})
	checkInvariants(t, s)
}

// fillForExport gives s live entries (some with wide flags, an expiry or an
// empty value), tombstones and expired entries not yet swept.
func fillForExport(t *testing.T, s *Store, clock *ManualClock) {
	t.Helper()
	for i := range 300 {
		req := SetRequest{Key: fmt.Sprintf("p%d/k%03d", i%3, i), Value: []byte(strings.Repeat("v", i%7)), Flags: uint64(i%4) << 31}
		if i%5 == 0 {
			req.TTL = time.Duration(1+i%3) * time.Second
		}
		mustSet(t, s, req)
		if i%4 == 0 {
			mustDelete(t, s, DeleteRequest{Key: req.Key})
		}
	}
	mustApply(t, s, Record{Key: "p0/never", Version: s.MaxVersion("") + 1, Deleted: true})
	clock.Advance(time.Second) // the keys with a one-second TTL expire, unswept
}

func TestExportRoundTrip(t *testing.T) {
	src, clock := newTestStore(t, Config{})
	fillForExport(t, src, clock)
	dst, _ := newTestStore(t, Config{Clock: clock})

	records := src.Export(nil, true)
	keys := map[string]bool{}
	for _, r := range records {
		if keys[r.Key] {
			t.Fatalf("%s exported twice", r.Key)
		}
		keys[r.Key] = true
		if !r.Deleted && r.Expires != 0 && r.Expires <= clock.Now().UnixNano() {
			t.Fatalf("an expired entry was exported: %+v", r)
		}
		if r.Deleted && (r.Value != nil || r.Created != 0 || r.Flags != 0 || r.Expires != 0) {
			t.Fatalf("a tombstone's record carries more than its key and version: %+v", r)
		}
		if !mustApply(t, dst, r) {
			t.Fatalf("record %+v not applied to an empty store", r)
		}
	}
	srcSt, dstSt := src.Stats(), dst.Stats()
	if srcSt.Tombstones == 0 || srcSt.Keys == 0 {
		t.Fatalf("nothing to compare: %+v", srcSt)
	}
	for i := range 300 {
		key := fmt.Sprintf("p%d/k%03d", i%3, i)
		if got, want := lookupOf(dst, key), lookupOf(src, key); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: copy has %+v\nsource has   %+v", key, got, want)
		}
	}
	if got, want := lookupOf(dst, "p0/never"), lookupOf(src, "p0/never"); !reflect.DeepEqual(got, want) || want.Deleted == 0 {
		t.Errorf("p0/never: copy has %+v, source has %+v", got, want)
	}
	// The source still counts its expired, unswept entries; Lookup above
	// removed them.
	srcSt = src.Stats()
	if srcSt.Keys != dstSt.Keys || srcSt.Bytes != dstSt.Bytes || srcSt.Tombstones != dstSt.Tombstones || srcSt.TombstoneBytes != dstSt.TombstoneBytes {
		t.Fatalf("copy holds %+v\nsource holds %+v", dstSt, srcSt)
	}
	if got, want := dst.MaxVersion(""), src.MaxVersion(""); got != want {
		t.Fatalf("MaxVersion of the copy %d, of the source %d", got, want)
	}
	checkInvariants(t, dst)
}

func TestExportMatchAndKeysOnly(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	fillForExport(t, s, clock)
	all := s.Export(nil, true)
	p1 := s.Export(func(key string) bool { return strings.HasPrefix(key, "p1/") }, false)
	var want []string
	for _, r := range all {
		if strings.HasPrefix(r.Key, "p1/") {
			want = append(want, r.Key)
		}
	}
	var got []string
	for _, r := range p1 {
		if r.Value != nil {
			t.Fatalf("%s exported with its value", r.Key)
		}
		got = append(got, r.Key)
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("match exported %v\nwant %v", got, want)
	}
}

func TestExportedValuesStayValid(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxMemory: 4096, Shards: 1})
	value := []byte("first value")
	mustSet(t, s, SetRequest{Key: "k", Value: value})
	records := s.Export(nil, true)
	if len(records) != 1 || string(records[0].Value) != "first value" || &records[0].Value[0] == &value[0] {
		t.Fatalf("Export lost the value, or aliased the writer's: %+v", records)
	}
	// Overwrite, delete, and evict the key: the exported bytes must not change.
	mustSet(t, s, SetRequest{Key: "k", Value: []byte("second value")})
	mustDelete(t, s, DeleteRequest{Key: "k"})
	for i := range 100 {
		mustSet(t, s, SetRequest{Key: fmt.Sprintf("filler%d", i), Value: make([]byte, 100)})
	}
	if string(records[0].Value) != "first value" {
		t.Fatalf("an exported value changed to %q", records[0].Value)
	}
}

func TestVersionsMatchesExport(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	fillForExport(t, s, clock)
	type kv struct {
		version uint64
		deleted bool
	}
	want := map[string]kv{}
	for _, r := range s.Export(nil, false) {
		want[r.Key] = kv{r.Version, r.Deleted}
	}
	got := map[string]kv{}
	s.Versions(func(key string, version uint64, deleted bool) {
		key = strings.Clone(key) // valid only during the call
		if _, ok := got[key]; ok {
			t.Errorf("%s reported twice", key)
		}
		got[key] = kv{version, deleted}
	})
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Versions reports %d keys, Export %d: %v\nwant %v", len(got), len(want), got, want)
	}
}

func TestApplyUnderMemoryLimit(t *testing.T) {
	const maxMemory = 32 << 10
	s, clock := newTestStore(t, Config{MaxMemory: maxMemory, Shards: 4})
	rng := rand.New(rand.NewPCG(3, 4))
	var version uint64 = 1000
	tombstones := false // seen: eviction takes them first, so few last
	for op := range 20000 {
		r := Record{Key: fmt.Sprintf("key-%d", rng.IntN(800)), Version: version + uint64(rng.IntN(50))}
		version += 10 // records arrive mostly, not always, in order
		r.Created = r.Version
		switch n := rng.IntN(10); {
		case n < 2:
			r.Deleted = true
		default:
			r.Value = make([]byte, rng.IntN(200))
			r.Flags = uint64(op%3) << 32
			if n == 9 {
				r.Expires = clock.Now().Add(time.Duration(rng.IntN(3)) * time.Second).UnixNano()
			}
		}
		if _, err := s.Apply(r); err != nil {
			t.Fatal(err)
		}
		if op%50 == 0 {
			clock.Advance(100 * time.Millisecond)
		}
		st := s.Stats()
		if st.Bytes+st.TombstoneBytes > maxMemory {
			t.Fatalf("op %d: %d bytes accounted, limit %d", op, st.Bytes+st.TombstoneBytes, maxMemory)
		}
		tombstones = tombstones || st.Tombstones > 0
		if op%97 == 0 {
			checkInvariants(t, s)
		}
	}
	st := s.Stats()
	if st.Evictions == 0 || !tombstones || st.Sets == 0 || st.Deletes == 0 {
		t.Fatalf("the records did not exercise eviction and tombstones: %+v", st)
	}
	// Stats agree with what Export lists, once expired entries are swept.
	s.sweep()
	var bytes, tombBytes int64
	for _, r := range s.Export(nil, true) {
		if r.Deleted {
			tombBytes += int64(len(r.Key)) + EntryOverhead
		} else {
			bytes += int64(len(r.Key)+len(r.Value)) + EntryOverhead
		}
	}
	if st := s.Stats(); st.Bytes != bytes || st.TombstoneBytes != tombBytes {
		t.Fatalf("Stats account %d live and %d tombstone bytes, Export lists %d and %d", st.Bytes, st.TombstoneBytes, bytes, tombBytes)
	}
	checkInvariants(t, s)
}

func TestApplyDoesNotAllocate(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxMemory: 1 << 20})
	value := []byte("value")
	mustApply(t, s, Record{Key: "hot", Value: value, Version: 1, Created: 1})
	mustApply(t, s, Record{Key: "gone", Version: 1, Deleted: true})
	v := uint64(1)
	tests := []struct {
		name string
		op   func()
	}{
		{"overwrite", func() { v++; _, _ = s.Apply(Record{Key: "hot", Value: value, Version: v, Created: 1}) }},
		{"refused", func() { _, _ = s.Apply(Record{Key: "hot", Value: value, Version: 1, Created: 1}) }},
		{"set over a tombstone, delete again", func() {
			v++
			_, _ = s.Apply(Record{Key: "gone", Value: value, Version: v, Created: v})
			v++
			_, _ = s.Apply(Record{Key: "gone", Version: v, Deleted: true})
		}},
		{"versions", func() { s.Versions(func(string, uint64, bool) {}) }},
	}
	for _, tt := range tests {
		if n := testing.AllocsPerRun(100, tt.op); n != 0 {
			t.Errorf("%s: %.1f allocations per run, want 0", tt.name, n)
		}
	}
	checkInvariants(t, s)
}

func TestApplyConcurrentWithSet(t *testing.T) {
	s, _ := newTestStore(t, Config{Shards: 4})
	base := uint64(epoch.UnixMicro())
	const keys, ops = 50, 3000
	var mu sync.Mutex
	top := map[string]uint64{} // the highest version written of each key, by any writer
	record := func(key string, v uint64) {
		mu.Lock()
		top[key] = max(top[key], v)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for range ops {
				r := Record{Key: fmt.Sprintf("k%d", rng.IntN(keys)), Version: base + uint64(rng.IntN(2*ops))}
				if rng.IntN(4) == 0 {
					r.Deleted = true
				} else {
					r.Value, r.Created = []byte("replicated"), base
				}
				record(r.Key, r.Version)
				if _, err := s.Apply(r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(7, 9))
		for i := range ops {
			key := fmt.Sprintf("k%d", rng.IntN(keys))
			e, err := s.Set(SetRequest{Key: key, Value: []byte("local")})
			if err != nil {
				t.Error(err)
				return
			}
			record(key, e.Version)
			if i%100 == 0 {
				s.Versions(func(string, uint64, bool) {})
				s.Export(nil, true)
			}
		}
	})
	wg.Wait()
	checkInvariants(t, s)
	// Last writer wins: each key holds its highest version, live or deleted.
	for key, want := range top {
		got := lookupOf(s, key)
		if v := max(got.Entry.Version, got.Deleted); v != want {
			t.Errorf("%s holds version %d (%+v), the highest written is %d", key, v, got, want)
		}
		if got.Entry.Version != 0 && !bytes.Equal(got.Entry.Value, []byte("local")) && !bytes.Equal(got.Entry.Value, []byte("replicated")) {
			t.Errorf("%s holds %q", key, got.Entry.Value)
		}
	}
}
