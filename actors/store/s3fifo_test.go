package store

import (
	"container/list"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// policy is a slab with an S3-FIFO over it, for driving the policy directly.
type policy struct {
	sl  slab
	p   s3fifo
	ids map[string]uint32
}

func newPolicy(budget int64) *policy {
	return &policy{p: newS3FIFO(budget), ids: map[string]uint32{}}
}

func fnv32(key string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return h.Sum32()
}

func (pl *policy) insert(key string) {
	i := pl.sl.alloc()
	*pl.sl.at(i) = entry{hash: fnv32(key), version: 1, created: 1}
	pl.sl.setKey(pl.sl.at(i), key, nil)
	pl.ids[key] = i
	pl.p.insert(&pl.sl, i)
}

func (pl *policy) touch(key string) { pl.p.touch(pl.sl.at(pl.ids[key])) }

func (pl *policy) queueOf(key string) uint8 { return pl.sl.at(pl.ids[key]).queue }

func (pl *policy) evict() string {
	i := pl.p.victim(&pl.sl)
	if i == 0 {
		return ""
	}
	key := strings.Clone(pl.sl.key(pl.sl.at(i)))
	pl.sl.release(i)
	delete(pl.ids, key)
	return key
}

func TestS3FIFOVictimOrder(t *testing.T) {
	// Every entry is EntryOverhead+1 bytes. With room for 100 entries, small's
	// share is 10 entries; with room for 1 its share is under one entry, so
	// small is always evicted from first.
	type step struct {
		op  string // "insert", "touch", "remove", or "evict" (key = expected victim, "" = none)
		key string
	}
	tests := []struct {
		name  string
		room  int64 // entries the budget holds
		steps []step
	}{
		{"empty", 100, []step{{"evict", ""}}},
		{"one-hit wonders leave in FIFO order", 100, []step{
			{"insert", "a"}, {"insert", "b"}, {"insert", "c"},
			{"evict", "a"}, {"evict", "b"}, {"evict", "c"}, {"evict", ""},
		}},
		{"an accessed new key moves to main instead of leaving", 100, []step{
			{"insert", "a"}, {"insert", "b"}, {"touch", "a"},
			{"evict", "b"}, // a moved to main on the way
			{"evict", "a"}, // main's oldest, not accessed since the move
		}},
		{"main gives accessed entries another round", 1, []step{
			{"insert", "a"}, {"insert", "b"}, {"touch", "a"}, {"touch", "b"},
			{"evict", "a"}, // both moved to main (a first, counters reset); a is main's oldest
			{"touch", "b"}, {"insert", "c"}, {"insert", "d"},
			{"evict", "c"}, // small first: it holds at least its share
			{"evict", "d"},
			{"evict", "b"}, // b was accessed: reinserted once with its counter lowered, then evicted
		}},
		{"small under its share: main goes first", 100, []step{
			{"insert", "g"}, {"evict", "g"}, // now remembered by the ghost
			{"insert", "g"}, {"insert", "x"}, // g straight to main, x to small
			{"evict", "g"}, // small holds less than its share
			{"evict", "x"},
		}},
		{"remove takes an entry out of line", 100, []step{
			{"insert", "a"}, {"insert", "b"}, {"remove", "a"},
			{"evict", "b"}, {"evict", ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := newPolicy(tt.room * (EntryOverhead + 1))
			for n, s := range tt.steps {
				switch s.op {
				case "insert":
					pl.insert(s.key)
				case "touch":
					pl.touch(s.key)
				case "remove":
					i := pl.ids[s.key]
					pl.p.remove(&pl.sl, i)
					pl.sl.release(i)
					delete(pl.ids, s.key)
				case "evict":
					if got := pl.evict(); got != s.key {
						t.Fatalf("step %d: evicted %q, want %q", n, got, s.key)
					}
				}
			}
		})
	}
}

func TestS3FIFOGhostHitQueue(t *testing.T) {
	pl := newPolicy(100 * (EntryOverhead + 1))
	pl.insert("a")
	if q := pl.queueOf("a"); q != queueSmall {
		t.Fatalf("new key in queue %d, want small", q)
	}
	pl.evict()
	pl.insert("a")
	if q := pl.queueOf("a"); q != queueMain {
		t.Fatalf("key remembered by the ghost in queue %d, want main", q)
	}
	// The ghost forgets it once used.
	pl.evict()
	pl.insert("a")
	if q := pl.queueOf("a"); q != queueSmall {
		t.Fatalf("evicted from main (not remembered) but queued in %d", q)
	}
}

func TestS3FIFOUnboundedKeepsNoGhost(t *testing.T) {
	pl := newPolicy(0)
	for i := range 100 {
		pl.insert(fmt.Sprint(i))
	}
	if len(pl.p.ghost.slots) != 0 {
		t.Fatalf("an unbounded shard allocated a ghost of %d slots", len(pl.p.ghost.slots))
	}
}

func TestGhost(t *testing.T) {
	var g ghost
	g.add(1) // no table yet: forgotten at once
	if g.take(1) {
		t.Fatal("empty ghost remembered a key")
	}
	g.fit(100, nil)
	if len(g.slots) != 128 {
		t.Fatalf("fit(100): %d slots, want 128", len(g.slots))
	}
	// One key in each of the 32 buckets (the top 5 bits), distinct low bits.
	spread := func(n uint32) uint32 { return n<<27 | n<<8 | 0x5a }
	for n := range uint32(32) {
		g.add(spread(n))
	}
	g.fit(1000, nil) // growth keeps what it remembered
	if len(g.slots) != 1024 {
		t.Fatalf("fit(1000): %d slots, want 1024", len(g.slots))
	}
	for n := range uint32(32) {
		if !g.take(spread(n)) {
			t.Fatalf("forgot %#x after growth", spread(n))
		}
		if g.take(spread(n)) {
			t.Fatalf("remembered %#x twice", spread(n))
		}
	}
	if g.take(spread(3) ^ 0x100) { // same bucket, another fingerprint
		t.Fatal("remembered a key never added")
	}
	// A bucket keeps its newest ghostWays fingerprints.
	var small ghost
	small.fit(1, nil)                                     // 64 slots, 16 buckets
	same := func(n uint32) uint32 { return 1<<30 | n<<4 } // all in bucket 4
	for n := range uint32(ghostWays + 2) {
		small.add(same(n))
	}
	for n := range uint32(ghostWays + 2) {
		if got, want := small.take(same(n)), n >= 2; got != want {
			t.Fatalf("fingerprint %d remembered = %v, want %v", n, got, want)
		}
	}
}

// lruSim is the plain LRU the hit-ratio test compares against.
type lruSim struct {
	cap int
	ll  *list.List
	m   map[string]*list.Element
}

func (l *lruSim) access(key string) bool {
	if e, ok := l.m[key]; ok {
		l.ll.MoveToFront(e)
		return true
	}
	l.m[key] = l.ll.PushFront(key)
	if l.ll.Len() > l.cap {
		delete(l.m, l.ll.Remove(l.ll.Back()).(string))
	}
	return false
}

func TestS3FIFOBeatsLRUOnZipf(t *testing.T) {
	// One shard, same number of entries for both; a seeded trace. The
	// store-level comparison with hashicorp/golang-lru is in bench/.
	const keys, requests = 100_000, 300_000
	for _, pct := range []int{1, 10} {
		capacity := keys * pct / 100
		rng := rand.New(rand.NewPCG(42, 1))
		zipf := rand.NewZipf(rng, 1.01, 1, keys-1)
		trace := make([]string, requests)
		for i := range trace {
			trace[i] = fmt.Sprintf("key-%06d", zipf.Uint64())
		}
		size := int64(len("key-000000")) + EntryOverhead
		sh := newShard(int64(capacity) * size)
		vc := &hlc{clock: NewManualClock(epoch)}
		lru := &lruSim{cap: capacity, ll: list.New(), m: map[string]*list.Element{}}
		var s3Hits, lruHits int
		for _, k := range trace {
			h := fnv32(k)
			if _, err := sh.get(h, k, vc.clock); err == nil {
				s3Hits++
			} else if _, err := sh.set(h, &SetRequest{Key: k}, vc); err != nil {
				t.Fatal(err)
			}
			if lru.access(k) {
				lruHits++
			}
		}
		if err := sh.check(); err != nil {
			t.Fatal(err)
		}
		s3, l := float64(s3Hits)/requests, float64(lruHits)/requests
		t.Logf("cache %d%% of %d keys: S3-FIFO hit ratio %.4f, LRU %.4f", pct, keys, s3, l)
		if s3 <= l {
			t.Errorf("cache %d%%: S3-FIFO %.4f does not beat LRU %.4f", pct, s3, l)
		}
	}
}

func TestS3FIFOScanResistance(t *testing.T) {
	// Hot keys used again and again survive a stream of one-hit keys ten
	// times the cache size.
	pl := newPolicy(50 * (EntryOverhead + 1)) // room for 50
	hot := []string{"h0", "h1", "h2", "h3", "h4"}
	evicted := []string{}
	admit := func(k string) {
		for pl.p.small.bytes+pl.p.main.bytes+EntryOverhead+1 > 50*(EntryOverhead+1) {
			evicted = append(evicted, pl.evict())
		}
		pl.insert(k)
	}
	for _, k := range hot {
		admit(k)
		pl.touch(k)
	}
	for i := range 500 {
		admit(fmt.Sprintf("once-%d", i))
		if i%10 == 0 {
			for _, k := range hot {
				pl.touch(k)
			}
		}
	}
	for _, k := range hot {
		if slices.Contains(evicted, k) {
			t.Errorf("hot key %s evicted", k)
		}
	}
	if len(evicted) < 450 {
		t.Fatalf("only %d evictions", len(evicted))
	}
}
