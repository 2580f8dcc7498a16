package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unsafe"
)

// TestGetMany reads one batch that mixes every case a read meets, over keys
// of several shards, and checks each key's outcome, the counters, the
// access bookkeeping and the values' buffer.
func TestGetMany(t *testing.T) {
	s, clock := newTestStore(t, Config{Shards: 4})
	live := mustSet(t, s, SetRequest{Key: "live", Value: []byte("one"), Flags: 7})
	wide := mustSet(t, s, SetRequest{Key: "wide", Value: []byte("two"), Flags: 1<<40 | 3})
	empty := mustSet(t, s, SetRequest{Key: "empty", Value: []byte{}})
	mustSet(t, s, SetRequest{Key: "expiring", Value: []byte("gone soon"), TTL: time.Second})
	later := mustSet(t, s, SetRequest{Key: "later", Value: []byte("stays"), TTL: time.Hour})
	mustSet(t, s, SetRequest{Key: "deleted", Value: []byte("x")})
	if _, err := s.Delete(DeleteRequest{Key: "deleted"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	before := s.Stats()

	keys := []string{"live", "absent", "expiring", "wide", "live", "deleted", "expiring", "empty", "later", "", "live"}
	want := []Entry{live, {Key: "absent"}, {Key: "expiring"}, wide, live, {Key: "deleted"}, {Key: "expiring"}, empty, later, {Key: ""}, live}
	shards := map[*shard]bool{}
	for _, k := range keys {
		sh, _ := s.shardOf(k)
		shards[sh] = true
	}
	if len(shards) < 2 {
		t.Fatalf("the keys fall in %d shard: the test needs several", len(shards))
	}

	out := make([]Entry, len(keys))
	buf := s.GetMany(keys, out, make([]byte, 0, 4)) // too small: the buffer grows on the way
	for i := range keys {
		got, w := out[i], want[i]
		if len(w.Value) == 0 {
			w.Value = nil
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("key %d (%q): got %+v, want %+v", i, keys[i], got, w)
		}
		if cap(got.Value) != len(got.Value) {
			t.Errorf("key %d (%q): value has room beyond it (cap %d, len %d): an append would overwrite the next", i, keys[i], cap(got.Value), len(got.Value))
		}
	}
	if len(buf) == 0 {
		t.Error("the returned buffer is empty")
	}

	after := s.Stats()
	if got := after.Hits - before.Hits; got != 6 { // live ×3, wide, empty, later
		t.Errorf("hits: %d, want 6", got)
	}
	if got := after.Misses - before.Misses; got != 5 { // absent, expiring ×2, deleted, ""
		t.Errorf("misses: %d, want 5", got)
	}
	if got := after.Expirations - before.Expirations; got != 1 { // expiring, found once; the second read finds nothing
		t.Errorf("expirations: %d, want 1", got)
	}
	if freq := entryFreq(t, s, "live"); freq != 3 {
		t.Errorf("access counter of a key read 3 times: %d, want 3", freq)
	}
	if freq := entryFreq(t, s, "wide"); freq != 1 {
		t.Errorf("access counter of a key read once: %d, want 1", freq)
	}
	checkInvariants(t, s)

	// With room enough, every value is read into the buffer given, one
	// after another.
	room := make([]byte, 0, 64)
	buf = s.GetMany(keys, out, room)
	total := 0
	for i, e := range out {
		total += len(e.Value)
		if len(e.Value) > 0 && !inside(e.Value, buf) {
			t.Errorf("key %d (%q): value not in the buffer given", i, keys[i])
		}
	}
	if len(buf) != total || unsafe.SliceData(buf) != unsafe.SliceData(room) {
		t.Errorf("buffer of %d bytes (moved: %v), the values total %d", len(buf), unsafe.SliceData(buf) != unsafe.SliceData(room), total)
	}

	// An empty batch reads nothing and returns the buffer as it was.
	if got := s.GetMany(nil, nil, buf[:0]); len(got) != 0 || cap(got) != cap(buf) {
		t.Errorf("empty batch: got a buffer of len %d cap %d, want the one given", len(got), cap(got))
	}
}

// inside reports whether b lies within buf.
func inside(b, buf []byte) bool {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= start && p+uintptr(len(b)) <= start+uintptr(len(buf))
}

// entryFreq is key's S3-FIFO access counter.
func entryFreq(t *testing.T, s *Store, key string) uint8 {
	t.Helper()
	sh, h := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.idx.find(&sh.sl, h, key)
	if i == 0 {
		t.Fatalf("key %q not in the store", key)
	}
	return sh.sl.at(i).freq()
}

// TestGetManyLeavesOthersValues: a value handed out is the reader's to
// change or append to; neither touches the store or the other values.
func TestGetManyLeavesOthersValues(t *testing.T) {
	s, _ := newTestStore(t, Config{Shards: 1})
	mustSet(t, s, SetRequest{Key: "a", Value: []byte("aaaa")})
	mustSet(t, s, SetRequest{Key: "b", Value: []byte("bbbb")})
	out := make([]Entry, 2)
	s.GetMany([]string{"a", "b"}, out, make([]byte, 0, 64))
	_ = append(out[0].Value, "XXXX"...)
	out[0].Value[0] = 'Z'
	if string(out[1].Value) != "bbbb" {
		t.Errorf("b's value: %q, want bbbb", out[1].Value)
	}
	if e, _ := s.Get("a"); string(e.Value) != "aaaa" {
		t.Errorf("the store's a: %q, want aaaa", e.Value)
	}
}

// TestGetManyIsGets is the property behind GetMany: on two stores that
// start alike (same shard placement, same clock) and take the same random
// writes, deletes, clock moves and batches of reads — GetMany on one, Get
// of each key in turn on the other — every read answers alike, and the
// stores stay alike: counters, and each shard's queues in order with
// every entry's access counter (which decide what S3-FIFO evicts later).
func TestGetManyIsGets(t *testing.T) {
	const keys = 40
	var total Stats // over all seeds: the runs must have met every case
	for seed := range uint64(60) {
		rng := rand.New(rand.NewPCG(seed, 15))
		cfg := Config{Shards: 4, MaxMemory: 4 * 700} // about 5 entries a shard: 40 keys evict one another
		many, mclock := newTestStore(t, cfg)
		each, eclock := newTestStore(t, cfg)
		each.seed = many.seed // same shard and home slot for every key
		name := func() string { return fmt.Sprintf("k%02d", rng.IntN(keys)) }
		for step := range 400 {
			switch r := rng.IntN(10); {
			case r < 4:
				req := SetRequest{Key: name(), Value: bytes.Repeat([]byte{byte(step)}, rng.IntN(80)), Flags: rng.Uint64N(3) << (32 * rng.Uint64N(2))}
				if rng.IntN(3) == 0 {
					req.TTL = time.Duration(1+rng.IntN(5)) * time.Second
				}
				_, err1 := many.Set(req)
				_, err2 := each.Set(req)
				if !errors.Is(err1, err2) {
					t.Fatalf("seed %d step %d: Set: %v and %v", seed, step, err1, err2)
				}
			case r < 5:
				req := DeleteRequest{Key: name()}
				_, _ = many.Delete(req)
				_, _ = each.Delete(req)
			case r < 6:
				d := time.Duration(rng.IntN(1500)) * time.Millisecond
				mclock.Advance(d)
				eclock.Advance(d)
			default:
				batch := make([]string, rng.IntN(24))
				for i := range batch {
					batch[i] = name()
				}
				out := make([]Entry, len(batch))
				many.GetMany(batch, out, nil)
				for i, k := range batch {
					want, err := each.Get(k)
					if err != nil {
						want = Entry{Key: k}
					}
					if !reflect.DeepEqual(out[i], want) {
						t.Fatalf("seed %d step %d: key %d (%q) of %v: GetMany %+v, Get %+v", seed, step, i, k, batch, out[i], want)
					}
				}
			}
			if a, b := many.Stats(), each.Stats(); a != b {
				t.Fatalf("seed %d step %d: stats differ:\nGetMany %+v\nGet     %+v", seed, step, a, b)
			}
		}
		if a, b := policyState(many), policyState(each); !reflect.DeepEqual(a, b) {
			t.Fatalf("seed %d: S3-FIFO state differs:\nGetMany %v\nGet     %v", seed, a, b)
		}
		checkInvariants(t, many)
		st := many.Stats()
		total.Hits += st.Hits
		total.Misses += st.Misses
		total.Evictions += st.Evictions
		total.Expirations += st.Expirations
	}
	if total.Hits == 0 || total.Misses == 0 || total.Evictions == 0 || total.Expirations == 0 {
		t.Fatalf("the runs missed a case: %+v", total)
	}
	t.Logf("over all seeds: %d hits, %d misses, %d evictions, %d expirations", total.Hits, total.Misses, total.Evictions, total.Expirations)
}

// policyState lists, shard by shard, each queue's keys from newest to
// oldest with their access counters, and the ghost's fingerprints.
func policyState(s *Store) []string {
	var out []string
	for n := range s.shards {
		sh := &s.shards[n]
		sh.mu.Lock()
		for _, q := range []*fifo{&sh.pol.small, &sh.pol.main, &sh.tombs} {
			line := fmt.Sprintf("shard %d:", n)
			for i := q.head; i != 0; i = sh.sl.at(i).next {
				e := sh.sl.at(i)
				line += fmt.Sprintf(" %s/%d", sh.sl.key(e), e.freq())
			}
			out = append(out, line)
		}
		out = append(out, fmt.Sprint(sh.pol.ghost))
		sh.mu.Unlock()
	}
	return out
}

// BenchmarkGetManyWarm measures what getMany's warm-up stages bring: the
// same batches of 96 random keys of 100k (100-byte values, 16 shards: 6
// keys a shard), read with and without them. ns/key is wall time.
//
//	go test -run '^$' -bench GetManyWarm -count 5 ./actors/store/
func BenchmarkGetManyWarm(b *testing.B) {
	const n, size = 100_000, 96
	s, err := New(Config{Shards: 16})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	names := make([]string, n)
	value := make([]byte, 100)
	for i := range names {
		names[i] = fmt.Sprintf("bench-key-%08x", i)
		if _, err := s.Set(SetRequest{Key: names[i], Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	for _, warm := range []bool{true, false} {
		b.Run(fmt.Sprintf("warm=%v", warm), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			batch, out, buf := make([]string, size), make([]Entry, size), make([]byte, 0, size*len(value))
			for b.Loop() {
				for i := range batch {
					batch[i] = names[rng.IntN(n)]
				}
				buf = s.getMany(batch, out, buf[:0], warm)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/key")
		})
	}
}
