package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// newTestStore makes a store on a manual clock (unless cfg has a clock).
func newTestStore(t *testing.T, cfg Config) (*Store, *ManualClock) {
	t.Helper()
	clock, _ := cfg.Clock.(*ManualClock)
	if cfg.Clock == nil {
		clock = NewManualClock(epoch)
		cfg.Clock = clock
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s, clock
}

func mustSet(t *testing.T, s *Store, req SetRequest) Entry {
	t.Helper()
	e, err := s.Set(req)
	if err != nil {
		t.Fatalf("Set(%q): %v", req.Key, err)
	}
	return e
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" = valid
	}{
		{"zero", Config{}, ""},
		{"default", DefaultConfig(), ""},
		{"power of two", Config{Shards: 64, MaxMemory: 1 << 20}, ""},
		{"one shard", Config{Shards: 1}, ""},
		{"not power of two", Config{Shards: 12}, "Shards must be 0 or a power of two"},
		{"negative shards", Config{Shards: -4}, "Shards"},
		{"too many shards", Config{Shards: MaxShards * 2}, "Shards"},
		{"negative memory", Config{MaxMemory: -1}, "MaxMemory"},
		{"negative sweep", Config{SweepInterval: -time.Second}, "SweepInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want ErrConfig naming %q", err, tt.want)
			}
			if _, err := New(tt.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("New() = %v, want ErrConfig", err)
			}
		})
	}
}

func TestDefaultShards(t *testing.T) {
	tests := []struct {
		procs     int
		maxMemory int64
		want      int
	}{
		{1, 0, 16},
		{2, 0, 16},
		{4, 0, 16},
		{5, 0, 32},
		{16, 0, 64},
		{2, 1 << 30, 16},
		{2, 64 << 20, 16},
		{2, 32 << 20, 8},
		{2, 8 << 20, 2},
		{2, 1 << 20, 1},
	}
	for _, tt := range tests {
		if got := defaultShards(tt.procs, tt.maxMemory); got != tt.want {
			t.Errorf("defaultShards(%d, %d) = %d, want %d", tt.procs, tt.maxMemory, got, tt.want)
		}
	}
}

func TestEntryIs56Bytes(t *testing.T) {
	// EntryOverhead's derivation assumes this layout: 56 bytes, packed.
	if got := unsafe.Sizeof(entry{}); got != 56 {
		t.Fatalf("entry is %d bytes, want 56", got)
	}
}

func TestVersionsRise(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	var last uint64
	rising := func(what string, v uint64) {
		t.Helper()
		if v <= last {
			t.Fatalf("%s: version %d not above %d", what, v, last)
		}
		last = v
	}

	a1 := mustSet(t, s, SetRequest{Key: "a", Value: []byte("1")})
	rising("create a", a1.Version)
	if a1.Created != a1.Version {
		t.Fatalf("new key: Created %d, Version %d", a1.Created, a1.Version)
	}
	if want := uint64(epoch.UnixMicro()); a1.Version != want {
		t.Fatalf("first version %d, want the clock's Unix microseconds %d", a1.Version, want)
	}
	// The clock stands still: versions still rise, one by one.
	b1 := mustSet(t, s, SetRequest{Key: "b", Value: []byte("1")})
	rising("create b", b1.Version)
	a2 := mustSet(t, s, SetRequest{Key: "a", Value: []byte("2")})
	rising("overwrite a", a2.Version)
	if a2.Created != a1.Created {
		t.Fatalf("overwrite changed Created from %d to %d", a1.Created, a2.Created)
	}
	// The clock jumps ahead: versions follow it.
	clock.Advance(time.Second)
	a3 := mustSet(t, s, SetRequest{Key: "a", Value: []byte("3")})
	rising("after clock jump", a3.Version)
	if want := uint64(epoch.Add(time.Second).UnixMicro()); a3.Version != want {
		t.Fatalf("version %d, want %d", a3.Version, want)
	}
	// The clock goes back: versions keep rising.
	clock.Advance(-time.Hour)
	a4 := mustSet(t, s, SetRequest{Key: "a", Value: []byte("4")})
	rising("after clock went back", a4.Version)
	if got, _ := s.Get("a"); got.Version != a4.Version || got.Created != a1.Created || string(got.Value) != "4" {
		t.Fatalf("Get(a) = %+v", got)
	}
	d, err := s.Delete(DeleteRequest{Key: "a"})
	if err != nil {
		t.Fatal(err)
	}
	rising("delete a", d)
	d2, err := s.Delete(DeleteRequest{Key: "never-there"})
	if err != nil {
		t.Fatalf("delete of an absent key: %v", err)
	}
	rising("delete of an absent key", d2)
	a5 := mustSet(t, s, SetRequest{Key: "a", Value: []byte("5")})
	rising("recreate a", a5.Version)
	if a5.Created != a5.Version {
		t.Fatalf("recreated key: Created %d, want its own version %d", a5.Created, a5.Version)
	}
	// Versions learnt from a peer push the clock.
	s.Observe(last + 1000)
	a6 := mustSet(t, s, SetRequest{Key: "a"})
	if a6.Version <= last+1000 {
		t.Fatalf("version %d after Observe(%d)", a6.Version, last+1000)
	}
}

func TestVersionsUniqueAcrossGoroutines(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	const workers, each = 4, 500
	got := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				e, err := s.Set(SetRequest{Key: fmt.Sprintf("k%d", i%7), Value: []byte("v")})
				if err != nil {
					t.Error(err)
					return
				}
				got[w] = append(got[w], e.Version)
			}
		}()
	}
	wg.Wait()
	all := slices.Concat(got...)
	slices.Sort(all)
	if n := len(slices.Compact(all)); n != workers*each {
		t.Fatalf("%d distinct versions for %d writes", n, workers*each)
	}
}

func TestCAS(t *testing.T) {
	type state int
	const (
		absent state = iota
		present
		expired
	)
	tests := []struct {
		name     string
		state    state
		checkCAS bool
		cas      func(current uint64) uint64
		wantErr  error
	}{
		{"no check, absent", absent, false, nil, nil},
		{"no check, present", present, false, nil, nil},
		{"only-if-absent, absent", absent, true, func(uint64) uint64 { return 0 }, nil},
		{"only-if-absent, expired", expired, true, func(uint64) uint64 { return 0 }, nil},
		{"only-if-absent, present", present, true, func(uint64) uint64 { return 0 }, ErrCASMismatch},
		{"version matches", present, true, func(v uint64) uint64 { return v }, nil},
		{"version older", present, true, func(v uint64) uint64 { return v - 1 }, ErrCASMismatch},
		{"version newer", present, true, func(v uint64) uint64 { return v + 1 }, ErrCASMismatch},
		{"version, absent", absent, true, func(uint64) uint64 { return 42 }, ErrCASMismatch},
		{"version of an expired key", expired, true, func(v uint64) uint64 { return v }, ErrCASMismatch},
	}
	for _, op := range []string{"set", "delete"} {
		for _, tt := range tests {
			t.Run(op+"/"+tt.name, func(t *testing.T) {
				s, clock := newTestStore(t, Config{})
				var current uint64
				if tt.state != absent {
					current = mustSet(t, s, SetRequest{Key: "k", Value: []byte("old"), TTL: time.Minute}).Version
					if tt.state == expired {
						clock.Advance(time.Minute)
					}
				}
				var cas uint64
				if tt.cas != nil {
					cas = tt.cas(current)
				}
				var err error
				var version uint64
				if op == "set" {
					var e Entry
					e, err = s.Set(SetRequest{Key: "k", Value: []byte("new"), CAS: cas, CheckCAS: tt.checkCAS})
					version = e.Version
				} else {
					version, err = s.Delete(DeleteRequest{Key: "k", CAS: cas, CheckCAS: tt.checkCAS})
				}
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("%s = %v, want %v", op, err, tt.wantErr)
				}
				got, getErr := s.Get("k")
				switch {
				case err != nil && tt.state == present: // refused: the old value stays
					if getErr != nil || string(got.Value) != "old" || got.Version != current {
						t.Fatalf("after a refused %s: Get = %+v, %v", op, got, getErr)
					}
				case err != nil:
					if !errors.Is(getErr, ErrNotFound) {
						t.Fatalf("after a refused %s of a missing key: Get = %+v, %v", op, got, getErr)
					}
				case op == "set":
					if getErr != nil || string(got.Value) != "new" || got.Version != version || version <= current {
						t.Fatalf("after set: Get = %+v, %v (set version %d, old %d)", got, getErr, version, current)
					}
				default:
					if !errors.Is(getErr, ErrNotFound) || version <= current {
						t.Fatalf("after delete: Get = %+v, %v (delete version %d, old %d)", got, getErr, version, current)
					}
				}
				checkInvariants(t, s)
			})
		}
	}
}

func TestInvalidRequests(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	if _, err := s.Set(SetRequest{Key: ""}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty key: %v", err)
	}
	if _, err := s.Set(SetRequest{Key: "k", TTL: -time.Second}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative TTL: %v", err)
	}
	if _, err := s.Delete(DeleteRequest{Key: ""}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("delete of empty key: %v", err)
	}
	if st := s.Stats(); st.Sets != 0 || st.Keys != 0 {
		t.Fatalf("invalid requests changed the store: %+v", st)
	}
}

func TestKeyLengthLimit(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	long := strings.Repeat("k", MaxKeyLen)
	if e := mustSet(t, s, SetRequest{Key: long, Value: []byte("v")}); e.Key != long {
		t.Fatalf("key of %d bytes came back as %d bytes", len(long), len(e.Key))
	}
	if e, err := s.Get(long); err != nil || e.Key != long || string(e.Value) != "v" {
		t.Fatalf("Get of the longest key: %v", err)
	}
	if _, err := s.Set(SetRequest{Key: long + "k"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("key of %d bytes: %v, want ErrInvalid", len(long)+1, err)
	}
	if _, err := s.Get(long + "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a key over the limit: %v", err)
	}
	checkInvariants(t, s)
}

func TestWideFlags(t *testing.T) {
	// Flags above 32 bits do not fit in the entry record: their high half
	// lives beside the slab, and must follow the entry through every change.
	s, _ := newTestStore(t, Config{})
	const wide, narrow = 0xdead_beef_0000_0007, 9
	get := func(key string) uint64 {
		t.Helper()
		e, err := s.Get(key)
		if err != nil {
			t.Fatal(err)
		}
		return e.Flags
	}
	if e := mustSet(t, s, SetRequest{Key: "a", Value: []byte("1"), Flags: wide}); e.Flags != wide || get("a") != wide {
		t.Fatalf("new key: flags %#x, get %#x", e.Flags, get("a"))
	}
	if e := mustSet(t, s, SetRequest{Key: "a", Value: []byte("2"), Flags: narrow}); e.Flags != narrow || get("a") != narrow {
		t.Fatalf("overwrite with narrow flags: %#x, get %#x", e.Flags, get("a"))
	}
	mustSet(t, s, SetRequest{Key: "a", Value: []byte("3"), Flags: wide})
	mustSet(t, s, SetRequest{Key: "b", Value: []byte("4"), Flags: 1 << 63})
	checkInvariants(t, s)
	if entries, _ := s.Scan("", "", 0, true); len(entries) != 2 || entries[0].Flags != wide || entries[1].Flags != 1<<63 {
		t.Fatalf("scan: %+v", entries)
	}
	mustDelete(t, s, DeleteRequest{Key: "a"}) // the tombstone has no flags
	checkInvariants(t, s)
	if e := mustSet(t, s, SetRequest{Key: "a", Value: []byte("5")}); e.Flags != 0 || get("a") != 0 {
		t.Fatalf("set over the tombstone: flags %#x, get %#x", e.Flags, get("a"))
	}
	mustSet(t, s, SetRequest{Key: "a", Value: []byte("6"), Flags: wide})
	if n := s.Drop(func(string) bool { return true }); n != 2 {
		t.Fatalf("dropped %d", n)
	}
	checkInvariants(t, s)
	for i := range s.shards {
		if n := len(s.shards[i].flagsHi); n != 0 {
			t.Fatalf("shard %d keeps %d high halves of flags after Drop", i, n)
		}
	}
}

func TestTTLExpiresOnRead(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	e := mustSet(t, s, SetRequest{Key: "k", Value: []byte("v"), TTL: 10 * time.Second})
	if want := epoch.Add(10 * time.Second).UnixNano(); e.Expires != want {
		t.Fatalf("Expires %d, want %d", e.Expires, want)
	}
	clock.Advance(10*time.Second - 1)
	if _, err := s.Get("k"); err != nil {
		t.Fatalf("1ns before expiry: %v", err)
	}
	clock.Advance(1)
	if _, err := s.Get("k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("at expiry: %v, want ErrNotFound", err)
	}
	st := s.Stats()
	if st.Expirations != 1 || st.Keys != 0 || st.Bytes != 0 || st.Hits != 1 || st.Misses != 1 {
		t.Fatalf("stats after expiry on read: %+v", st)
	}
	// Overwriting without a TTL clears the expiry.
	mustSet(t, s, SetRequest{Key: "k", Value: []byte("v"), TTL: time.Second})
	mustSet(t, s, SetRequest{Key: "k", Value: []byte("v2")})
	clock.Advance(time.Hour)
	if e, err := s.Get("k"); err != nil || e.Expires != 0 {
		t.Fatalf("overwrite without TTL: %+v, %v", e, err)
	}
	checkInvariants(t, s)
}

func TestExpiredKeyIsAbsentForWrites(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	old := mustSet(t, s, SetRequest{Key: "k", Value: []byte("v"), TTL: time.Second})
	clock.Advance(time.Second)
	e := mustSet(t, s, SetRequest{Key: "k", Value: []byte("w")})
	if e.Created == old.Created || e.Created != e.Version {
		t.Fatalf("set over an expired key kept Created %d (old %d, version %d)", e.Created, old.Created, e.Version)
	}
	mustSet(t, s, SetRequest{Key: "j", Value: []byte("v"), TTL: time.Second})
	clock.Advance(time.Second)
	if _, err := s.Delete(DeleteRequest{Key: "j"}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Expirations != 2 || st.Deletes != 0 || st.Keys != 1 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestSweepRemovesExpired(t *testing.T) {
	s, clock := newTestStore(t, Config{MaxMemory: 64 << 20})
	for i := range 3000 { // several sweep batches per shard
		ttl := time.Duration(0)
		if i%3 != 0 {
			ttl = time.Duration(1+i%2) * time.Minute
		}
		mustSet(t, s, SetRequest{Key: fmt.Sprintf("k%05d", i), Value: []byte("v"), TTL: ttl})
	}
	if n := s.sweep(); n != 0 {
		t.Fatalf("sweep before any expiry removed %d", n)
	}
	clock.Advance(time.Minute)
	if n := s.sweep(); n != 1000 {
		t.Fatalf("first sweep removed %d, want 1000", n)
	}
	clock.Advance(time.Minute)
	if n := s.sweep(); n != 1000 {
		t.Fatalf("second sweep removed %d, want 1000", n)
	}
	st := s.Stats()
	if st.Keys != 1000 || st.Expirations != 2000 || st.Misses != 0 {
		t.Fatalf("stats after sweeps: %+v", st)
	}
	checkInvariants(t, s)
}

func TestLoopSweepsOnTick(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	tick := manualTicker(s)
	s.Start()
	mustSet(t, s, SetRequest{Key: "short", TTL: time.Second})
	mustSet(t, s, SetRequest{Key: "long", TTL: time.Hour})
	clock.Advance(time.Second)
	tick <- clock.Now() // unbuffered: the loop has taken it, and sweeps before reading its inbox again
	st, err := s.AskStats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Expirations != 1 || st.Keys != 1 {
		t.Fatalf("after a tick: %+v", st)
	}
	clock.Advance(time.Hour)
	if n, err := s.AskSweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("AskSweep = %d, %v; want 1", n, err)
	}
}

func TestAskGet(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	ctx := context.Background()
	if _, err := s.AskGet(ctx, "k"); !errors.Is(err, ErrStopped) {
		t.Fatalf("AskGet before Start = %v, want ErrStopped", err)
	}
	s.Start()
	mustSet(t, s, SetRequest{Key: "k", Value: []byte("v")})
	if e, err := s.AskGet(ctx, "k"); err != nil || string(e.Value) != "v" {
		t.Fatalf("AskGet = %+v, %v", e, err)
	}
	if _, err := s.AskGet(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AskGet of a missing key = %v", err)
	}
}

func TestStopIsIdempotentAndDataStaysUsable(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	s.Stop() // before Start: fine
	s.Start()
	s.Stop()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); s.Stop() }()
	}
	wg.Wait()
	if _, err := s.AskStats(context.Background()); !errors.Is(err, ErrStopped) {
		t.Fatalf("AskStats after Stop = %v, want ErrStopped", err)
	}
	mustSet(t, s, SetRequest{Key: "k", Value: []byte("v"), TTL: time.Second})
	if _, err := s.Get("k"); err != nil {
		t.Fatalf("Get after Stop: %v", err)
	}
	clock.Advance(time.Second)
	if _, err := s.Get("k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expiry after Stop: %v", err)
	}
}

func TestScan(t *testing.T) {
	s, clock := newTestStore(t, Config{})
	for _, k := range []string{"b", "a/2", "a/10", "a/1", "a", "ab", "a/3/x", "c"} {
		mustSet(t, s, SetRequest{Key: k, Value: []byte("v:" + k)})
	}
	mustSet(t, s, SetRequest{Key: "a/0", Value: []byte("soon gone"), TTL: time.Second})
	clock.Advance(time.Second)

	keys := func(es []Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Key)
		}
		return out
	}
	tests := []struct {
		prefix, after string
		limit         int
		want          []string
		more          bool
	}{
		{"", "", 0, []string{"a", "a/1", "a/10", "a/2", "a/3/x", "ab", "b", "c"}, false},
		{"a/", "", 0, []string{"a/1", "a/10", "a/2", "a/3/x"}, false},
		{"a/", "", 2, []string{"a/1", "a/10"}, true},
		{"a/", "a/10", 2, []string{"a/2", "a/3/x"}, false},
		{"a/", "a/10", 1, []string{"a/2"}, true},
		{"a/", "a/3/x", 0, nil, false},
		{"", "ab", 0, []string{"b", "c"}, false},
		{"a", "", 3, []string{"a", "a/1", "a/10"}, true},
		{"zz", "", 0, nil, false},
		{"", "", 8, []string{"a", "a/1", "a/10", "a/2", "a/3/x", "ab", "b", "c"}, false},
	}
	for _, tt := range tests {
		got, more := s.Scan(tt.prefix, tt.after, tt.limit, false)
		if !slices.Equal(keys(got), tt.want) || more != tt.more {
			t.Errorf("Scan(%q, %q, %d) = %v, %v; want %v, %v", tt.prefix, tt.after, tt.limit, keys(got), more, tt.want, tt.more)
		}
		for _, e := range got {
			if string(e.Value) != "v:"+e.Key || e.Version == 0 {
				t.Errorf("Scan entry %+v", e)
			}
		}
	}
	got, _ := s.Scan("a/", "", 0, true)
	for _, e := range got {
		if e.Value != nil || e.Version == 0 {
			t.Errorf("keys-only Scan entry %+v", e)
		}
	}
}

func TestTooLarge(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxMemory: 4096, Shards: 2}) // 2048 bytes per shard
	if s.ShardBudget() != 2048 {
		t.Fatalf("ShardBudget = %d", s.ShardBudget())
	}
	for i := range 10 {
		mustSet(t, s, SetRequest{Key: fmt.Sprintf("k%d", i), Value: make([]byte, 50)})
	}
	before := s.Stats()
	big := make([]byte, 2048-EntryOverhead-len("big")+1)
	if _, err := s.Set(SetRequest{Key: "big", Value: big}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Set of an entry one byte over a shard = %v, want ErrTooLarge", err)
	}
	if after := s.Stats(); after.Keys != before.Keys || after.Evictions != before.Evictions {
		t.Fatalf("a refused entry evicted: before %+v, after %+v", before, after)
	}
	// Exactly a shard's budget fits (evicting what shares its shard).
	if _, err := s.Set(SetRequest{Key: "big", Value: big[1:]}); err != nil {
		t.Fatalf("entry of exactly a shard's budget: %v", err)
	}
	checkInvariants(t, s)
}

func TestOverwriteAdjustsBytes(t *testing.T) {
	s, _ := newTestStore(t, Config{})
	mustSet(t, s, SetRequest{Key: "key", Value: make([]byte, 100)})
	if got, want := s.Stats().Bytes, int64(3+100+EntryOverhead); got != want {
		t.Fatalf("Bytes %d, want %d", got, want)
	}
	mustSet(t, s, SetRequest{Key: "key", Value: make([]byte, 10)})
	if got, want := s.Stats().Bytes, int64(3+10+EntryOverhead); got != want {
		t.Fatalf("after shrinking: Bytes %d, want %d", got, want)
	}
	mustSet(t, s, SetRequest{Key: "key", Value: make([]byte, 1000)})
	if got, want := s.Stats().Bytes, int64(3+1000+EntryOverhead); got != want {
		t.Fatalf("after growing: Bytes %d, want %d", got, want)
	}
	if _, err := s.Delete(DeleteRequest{Key: "key"}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Bytes != 0 || st.Keys != 0 || st.Deletes != 1 || st.Sets != 3 {
		t.Fatalf("after delete: %+v", st)
	}
}

func TestOverwriteThatNeedsRoomKeepsTheKey(t *testing.T) {
	s, _ := newTestStore(t, Config{MaxMemory: 2000, Shards: 1})
	for i := range 8 {
		mustSet(t, s, SetRequest{Key: fmt.Sprintf("k%d", i), Value: make([]byte, 100)})
	}
	// Growing k0 (the oldest: first in line for eviction) must evict others, not k0.
	e := mustSet(t, s, SetRequest{Key: "k0", Value: make([]byte, 1500)})
	got, err := s.Get("k0")
	if err != nil || len(got.Value) != 1500 || got.Version != e.Version {
		t.Fatalf("Get(k0) = %+v, %v", got, err)
	}
	if st := s.Stats(); st.Evictions == 0 || st.Bytes > 2000 {
		t.Fatalf("stats: %+v", st)
	}
	checkInvariants(t, s)
}

func TestMemoryNeverExceedsLimit(t *testing.T) {
	const maxMemory = 64 << 10
	s, clock := newTestStore(t, Config{MaxMemory: maxMemory, Shards: 4})
	rng := rand.New(rand.NewPCG(1, 2))
	for op := range 20000 {
		key := fmt.Sprintf("key-%d", rng.IntN(600))
		switch r := rng.IntN(100); {
		case r < 60:
			size := rng.IntN(300)
			if rng.IntN(50) == 0 {
				size = rng.IntN(maxMemory / 4) // up to a whole shard, sometimes too large
			}
			ttl := time.Duration(0)
			if rng.IntN(4) == 0 {
				ttl = time.Duration(1+rng.IntN(10)) * time.Second
			}
			flags := uint64(op%3) << 32 // every third write has flags wider than the entry holds
			_, err := s.Set(SetRequest{Key: key, Value: make([]byte, size), TTL: ttl, Flags: flags})
			if err != nil && !errors.Is(err, ErrTooLarge) {
				t.Fatal(err)
			}
		case r < 85:
			s.Get(key)
		case r < 95:
			if _, err := s.Delete(DeleteRequest{Key: key}); err != nil {
				t.Fatal(err)
			}
		case r < 99:
			clock.Advance(time.Second)
		default:
			s.sweep()
		}
		if st := s.Stats(); st.Bytes > maxMemory {
			t.Fatalf("op %d: %d bytes accounted, limit %d", op, st.Bytes, maxMemory)
		}
		if op%97 == 0 {
			checkInvariants(t, s)
		}
	}
	st := s.Stats()
	if st.Evictions == 0 || st.Expirations == 0 || st.Deletes == 0 {
		t.Fatalf("the random ops did not exercise eviction, expiry and delete: %+v", st)
	}
	checkInvariants(t, s)
}

func TestEvictionKeepsFrequentKeys(t *testing.T) {
	// One shard that holds about 20 entries.
	size := int64(len("hot-00") + 10 + EntryOverhead)
	s, _ := newTestStore(t, Config{MaxMemory: 20 * size, Shards: 1})
	hot := make([]string, 5)
	for i := range hot {
		hot[i] = fmt.Sprintf("hot-%02d", i)
		mustSet(t, s, SetRequest{Key: hot[i], Value: make([]byte, 10)})
	}
	for range 3 {
		for _, k := range hot {
			if _, err := s.Get(k); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A scan of 200 keys read once each.
	for i := range 200 {
		mustSet(t, s, SetRequest{Key: fmt.Sprintf("one-%02d", i%100), Value: make([]byte, 10)})
		if i%20 == 0 {
			for _, k := range hot { // the hot keys stay in use
				s.Get(k)
			}
		}
	}
	for _, k := range hot {
		if _, err := s.Get(k); err != nil {
			t.Errorf("frequent key %s was evicted by one-hit wonders", k)
		}
	}
	if st := s.Stats(); st.Evictions < 150 {
		t.Fatalf("only %d evictions", st.Evictions)
	}
	checkInvariants(t, s)
}

func TestValuesAreCopied(t *testing.T) {
	// The store keeps its own copy of a value (in its arena) and hands out
	// copies: neither the writer's buffer nor a reader's result aliases it.
	s, _ := newTestStore(t, Config{})
	buf := make([]byte, 10, 4096)
	copy(buf, "0123456789")
	mustSet(t, s, SetRequest{Key: "k", Value: buf})
	buf[0] = 'X'
	e, _ := s.Get("k")
	if string(e.Value) != "0123456789" {
		t.Fatalf("the store aliased the writer's buffer: %q", e.Value)
	}
	e.Value[1] = 'Y'
	if again, _ := s.Get("k"); string(again.Value) != "0123456789" {
		t.Fatalf("the store aliased a reader's result: %q", again.Value)
	}
	// GetAppend appends to the caller's buffer.
	got, err := s.GetAppend("k", []byte("v="))
	if err != nil || string(got.Value) != "v=0123456789" || got.Key != "k" {
		t.Fatalf("GetAppend: %q, %v", got.Value, err)
	}
	if _, err := s.GetAppend("absent", nil); err != ErrNotFound {
		t.Fatalf("GetAppend of an absent key: %v", err)
	}
	// An overwrite of another size class moves the block; the old copy a
	// reader holds stays as it was.
	mustSet(t, s, SetRequest{Key: "k", Value: make([]byte, 5000)})
	if string(e.Value) != "0Y23456789" {
		t.Fatalf("a reader's copy changed to %q", e.Value)
	}
	if again, _ := s.Get("k"); len(again.Value) != 5000 {
		t.Fatalf("after growth the value is %d bytes", len(again.Value))
	}
	checkInvariants(t, s)
}

func TestConcurrentUse(t *testing.T) {
	s, clock := newTestStore(t, Config{MaxMemory: 256 << 10, Shards: 8})
	tick := manualTicker(s)
	s.Start()
	const workers, ops = 8, 3000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			last := map[string]uint64{}
			for range ops {
				key := fmt.Sprintf("k%d", rng.IntN(300))
				switch rng.IntN(10) {
				case 0, 1, 2:
					e, err := s.Set(SetRequest{Key: key, Value: make([]byte, rng.IntN(200)), TTL: time.Duration(rng.IntN(3)) * time.Second})
					if err != nil {
						t.Error(err)
						return
					}
					if e.Version <= last[key] {
						t.Errorf("version of %s fell from %d to %d", key, last[key], e.Version)
					}
					last[key] = e.Version
				case 3:
					if _, err := s.Delete(DeleteRequest{Key: key}); err != nil {
						t.Error(err)
					}
				case 4:
					if e, err := s.Get(key); err == nil {
						s.Set(SetRequest{Key: key, Value: []byte("cas"), CheckCAS: true, CAS: e.Version})
					}
				case 5:
					s.Scan("k1", "", 10, rng.IntN(2) == 0)
				case 6:
					s.Stats()
				default:
					if e, err := s.Get(key); err == nil && e.Version < last[key] {
						t.Errorf("read version %d of %s below the %d this goroutine wrote", e.Version, key, last[key])
					}
				}
			}
		}()
	}
	wg.Add(1)
	go func() { // time passes and the loop sweeps
		defer wg.Done()
		for range 50 {
			clock.Advance(100 * time.Millisecond)
			tick <- clock.Now()
		}
	}()
	wg.Wait()
	checkInvariants(t, s)
	if st := s.Stats(); st.Bytes > 256<<10 || st.Sets == 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestDropRemovesMatchingKeys(t *testing.T) {
	s, err := New(Config{MaxMemory: 1 << 20, Shards: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3000 {
		if _, err := s.Set(SetRequest{Key: fmt.Sprintf("k%d", i), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	odd := func(key string) bool { return (key[len(key)-1]-'0')%2 == 1 }
	if n := s.Drop(odd); n != 1500 {
		t.Fatalf("Drop removed %d, want 1500", n)
	}
	for i := range 3000 {
		key := fmt.Sprintf("k%d", i)
		_, err := s.Get(key)
		if odd(key) != errors.Is(err, ErrNotFound) {
			t.Fatalf("after Drop, Get %s = %v", key, err)
		}
	}
	if st := s.Stats(); st.Keys != 1500 {
		t.Fatalf("stats after Drop: %+v", st)
	}
	checkInvariants(t, s)
}
