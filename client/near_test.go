package client

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// nearHarness drives a near cache with one partition through the calls a
// client and its feed goroutine make, with no network.
type nearHarness struct {
	t    *testing.T
	n    *nearCache
	subj wire.Subjects
}

func newNearHarness(t *testing.T, ttl time.Duration) *nearHarness {
	n := newNearCache(1<<20, ttl)
	n.setPartitions(1)
	return &nearHarness{t: t, n: n, subj: wire.NewSubjects("")}
}

// change is the feed announcing key at version as entry (term, seq).
func (h *nearHarness) change(key string, version, term, seq uint64) {
	data, err := msgpack.Marshal(&wire.FeedChange{Key: key, Version: version, P: 0, Term: term, Seq: seq})
	if err != nil {
		h.t.Fatal(err)
	}
	h.n.onFeed(&nats.Msg{Subject: h.subj.Changes(), Data: data}, h.subj)
}

// heads is a beacon naming (term, seq) as the partition's head.
func (h *nearHarness) heads(term, seq uint64) {
	data, err := msgpack.Marshal(&wire.FeedHeads{Node: "n", Every: wire.FeedHeadsEvery, Heads: []uint64{0, term, seq}})
	if err != nil {
		h.t.Fatal(err)
	}
	h.n.onFeed(&nats.Msg{Subject: h.subj.ChangeHeads(), Data: data}, h.subj)
}

// read is a Get that missed and was answered version.
func (h *nearHarness) read(key string, version uint64) {
	h.readEnd(h.n.begin(key), version)
}

func (h *nearHarness) readEnd(t nearToken, version uint64) {
	h.n.endRead(t, &wire.Result{Code: wire.CodeOK, Version: version, Value: []byte("v")}, nil)
}

// write is a Set through the client, answered version.
func (h *nearHarness) write(key string, version uint64) {
	req := wire.Request{Op: wire.OpSet, Key: key, Value: []byte("w")}
	h.n.endWrite(h.n.begin(key), &req, &wire.Result{Code: wire.CodeOK, Version: version}, nil)
}

// served returns the version a Get of key would be served from the near
// cache, 0 for a miss.
func (h *nearHarness) served(key string) uint64 {
	it, ok := h.n.get(key)
	if !ok {
		return 0
	}
	return it.Version
}

func TestNearCacheInvalidation(t *testing.T) {
	tests := []struct {
		name string
		run  func(h *nearHarness)
		want uint64 // served version of "k"; 0 = a miss
	}{
		{"nothing synced: nothing kept", func(h *nearHarness) { h.read("k", 5) }, 0},
		{"synced by a beacon, then read", func(h *nearHarness) { h.heads(7, 3); h.read("k", 5) }, 5},
		{"synced by a change, then read", func(h *nearHarness) { h.change("x", 4, 7, 3); h.read("k", 5) }, 5},
		{"read before the baseline is not kept", func(h *nearHarness) {
			t := h.n.begin("k")
			h.heads(7, 3)
			h.readEnd(t, 5)
		}, 0},
		{"another key's change in sequence keeps it", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			h.change("x", 6, 7, 4)
			h.change("y", 7, 7, 5)
		}, 5},
		{"its change removes it", func(h *nearHarness) { h.heads(7, 3); h.read("k", 5); h.change("k", 6, 7, 4) }, 0},
		{"an older change of it (reordered) keeps it", func(h *nearHarness) { h.heads(7, 3); h.read("k", 5); h.change("k", 4, 7, 4) }, 5},
		{"gap: another key's change after a lost one drops the partition", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			h.change("x", 6, 7, 5) // seq 4 (maybe k's change) was lost
		}, 0},
		{"gap seen by a beacon after silence", func(h *nearHarness) { h.heads(7, 3); h.read("k", 5); h.heads(7, 4) }, 0},
		{"a beacon in step keeps it", func(h *nearHarness) { h.heads(7, 3); h.read("k", 5); h.heads(7, 3) }, 5},
		{"term change drops the partition", func(h *nearHarness) { h.heads(7, 3); h.read("k", 5); h.heads(9, 0) }, 0},
		{"a change under a new term drops it", func(h *nearHarness) { h.heads(7, 3); h.read("k", 5); h.change("x", 6, 9, 1) }, 0},
		{"a deposed primary's change drops it", func(h *nearHarness) {
			h.heads(9, 0)
			h.read("k", 5)
			h.change("x", 6, 7, 4)
		}, 0},
		{"reads after a drop are kept again", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			h.heads(9, 0)
			h.read("k", 6)
		}, 6},
		{"after a drop, the same version read again is kept", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			h.heads(9, 0)
			h.read("k", 5)
		}, 5},
		{"after a drop, a version below the one served (lost in a failover) is not kept", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			h.served("k")
			h.heads(9, 0)
			h.read("k", 4)
		}, 0},
		{"a failed write keeps the entry as a floor, unserved", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			req := wire.Request{Op: wire.OpSet, Key: "k", Value: []byte("w")}
			h.n.endWrite(h.n.begin("k"), &req, &wire.Result{}, ErrTimeout)
			h.read("k", 4)
		}, 0},
		{"a read in flight across a drop is not kept", func(h *nearHarness) {
			h.heads(7, 3)
			t := h.n.begin("k")
			h.heads(7, 9) // a gap while it was in flight
			h.readEnd(t, 5)
		}, 0},
		{"reconnect drops everything", func(h *nearHarness) { h.heads(7, 3); h.read("k", 5); h.n.reconnected() }, 0},
		{"reconnect, then a beacon: kept again after a new read", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			h.n.reconnected()
			h.heads(7, 3)
			h.read("k", 6)
		}, 6},
		{"a change of it while its read is in flight: the older answer is not kept", func(h *nearHarness) {
			h.heads(7, 3)
			t := h.n.begin("k")
			h.change("k", 6, 7, 4)
			h.readEnd(t, 5)
		}, 0},
		{"... but an answer at or above the change is", func(h *nearHarness) {
			h.heads(7, 3)
			t := h.n.begin("k")
			h.change("k", 6, 7, 4)
			h.readEnd(t, 6)
		}, 6},
		{"own write replaces the entry", func(h *nearHarness) { h.heads(7, 3); h.read("k", 5); h.write("k", 8) }, 8},
		{"own write's feed echo keeps it", func(h *nearHarness) { h.heads(7, 3); h.write("k", 8); h.change("k", 8, 7, 4) }, 8},
		{"a read in flight across own write does not bring back the older value", func(h *nearHarness) {
			h.heads(7, 3)
			t := h.n.begin("k")
			h.write("k", 8)
			h.readEnd(t, 5)
		}, 8},
		{"own write with a TTL drops the entry", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			req := wire.Request{Op: wire.OpSet, Key: "k", Value: []byte("w"), TTL: 1000}
			h.n.endWrite(h.n.begin("k"), &req, &wire.Result{Code: wire.CodeOK, Version: 9}, nil)
		}, 0},
		{"own delete drops it", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			req := wire.Request{Op: wire.OpDel, Key: "k"}
			h.n.endWrite(h.n.begin("k"), &req, &wire.Result{Code: wire.CodeOK, Version: 9}, nil)
		}, 0},
		{"a failed write drops it", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			req := wire.Request{Op: wire.OpSet, Key: "k", Value: []byte("w")}
			h.n.endWrite(h.n.begin("k"), &req, &wire.Result{}, ErrTimeout)
		}, 0},
		{"a newer answer elsewhere (MGet) removes an older entry", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			h.n.observe("k", 6, true)
		}, 0},
		{"an Incr through the client removes the older entry", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			(&Client{near: h.n}).nearObserve([]wire.Request{{Op: wire.OpIncr, Key: "k"}}, []wire.Result{{Code: wire.CodeOK, Version: 6}})
		}, 0},
		{"a touch (Get AndTouch) whose answer was lost stops the entry", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			(&Client{near: h.n}).nearObserve([]wire.Request{{Op: wire.OpGet, Key: "k", TTL: 1000}}, []wire.Result{{}})
		}, 0},
		{"a plain get that failed changes nothing", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			(&Client{near: h.n}).nearObserve([]wire.Request{{Op: wire.OpGet, Key: "k"}}, []wire.Result{{Code: wire.CodeUnavailable}})
		}, 5},
		{"not found removes it", func(h *nearHarness) {
			h.heads(7, 3)
			h.read("k", 5)
			h.n.endRead(h.n.begin("k"), &wire.Result{Code: wire.CodeNotFound}, nil)
		}, 0},
		{"an older answer does not replace a newer entry", func(h *nearHarness) {
			h.heads(7, 3)
			h.write("k", 8)
			h.read("k", 5)
		}, 8},
	}
	for _, tt := range tests {
		h := newNearHarness(t, time.Hour)
		tt.run(h)
		if got := h.served("k"); got != tt.want {
			t.Errorf("%s: served version %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestNearCacheBounds(t *testing.T) {
	// ttl: an entry older than ttl is not served, whatever the feed says.
	h := newNearHarness(t, time.Nanosecond)
	h.heads(7, 3)
	h.read("k", 5)
	if got := h.served("k"); got != 0 {
		t.Fatalf("served version %d past its ttl", got)
	}
	// A feed unheard for a few beacons: the entry is kept but not served,
	// until the feed is heard in step again.
	h = newNearHarness(t, time.Hour)
	h.heads(7, 3)
	h.read("k", 5)
	(*h.n.parts.Load())[0].liveUntil.Store(h.n.now())
	if got := h.served("k"); got != 0 {
		t.Fatalf("served version %d with the feed unheard", got)
	}
	h.heads(7, 3)
	if got := h.served("k"); got != 5 {
		t.Fatalf("served version %d once the feed is back in step, want 5", got)
	}
	// Bytes: the LRU keeps the most recently used within maxBytes.
	n := newNearCache(nearShards*(nearEntryOverhead+2)*2, time.Hour) // two entries of 1-byte key and value per shard
	n.setPartitions(1)
	h = &nearHarness{t: t, n: n, subj: wire.NewSubjects("")}
	h.heads(7, 3)
	h.read("a", 1)
	h.read("b", 2)
	h.served("a") // a is now the most recent
	h.read("c", 3)
	if h.served("a") != 1 || h.served("c") != 3 || h.served("b") != 0 {
		t.Fatalf("LRU kept a=%d b=%d c=%d; want a and c", h.served("a"), h.served("b"), h.served("c"))
	}
	if s := (&Client{near: n}).NearCacheStats(); s.Evictions != 1 || s.Entries != 2 || s.Hits == 0 || s.Misses == 0 {
		t.Fatalf("stats %+v", s)
	}
}
