package replicator

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/internal/testkit"
	"github.com/roostkv/roost/partition"
)

// The primary's log keeps only the entries a follower may still fetch
// (logFloor): none when the partition has no other owner, and, in a
// cluster, those some owner or other follower has not applied.

// leadAlone makes c the ready primary of a partition it alone owns.
func leadAlone(t *testing.T, c *core) {
	t.Helper()
	_, _ = stepAll(t, c, Tick{Now: 1e9}, SetOwners{Owners: []string{c.cfg.Self}, Live: []string{c.cfg.Self}})
	if !c.serving() {
		t.Fatalf("not serving alone: %+v", c.claim())
	}
}

// fetch steps a FetchRequest of first..last from node from and returns the answer.
func fetch(t *testing.T, c *core, from string, first, last uint64) FetchResponse {
	t.Helper()
	effects, _ := stepAll(t, c, FetchRequest{P: 0, From: from, Req: 99, Term: c.term, First: first, Last: last})
	sent := effectsOf[send](effects)
	if len(sent) != 1 {
		t.Fatalf("fetch answered with %+v", effects)
	}
	return sent[0].Msg.(FetchResponse)
}

func seqsOf(entries []Entry) []uint64 {
	var out []uint64
	for _, e := range entries {
		out = append(out, e.Seq)
	}
	return out
}

func TestCoreLogKeepsWhatFollowersNeed(t *testing.T) {
	t.Run("a partition with no other owner keeps no log", func(t *testing.T) {
		c := newTestCore("a")
		leadAlone(t, c)
		effects, _ := stepAll(t, c, write(1, AckPrimary, setOp("k", "v"), setOp("j", "w")))
		if pub := effectsOf[publish](effects); len(pub) != 1 || len(pub[0].To) != 0 || len(pub[0].Batch.Entries) != 2 {
			t.Fatalf("publish (the change feed's, to no replica): %+v", pub)
		}
		if n := len(c.log.entries); n != 0 || c.log.bytes != 0 {
			t.Fatalf("the log holds %d entries, %d bytes", n, c.log.bytes)
		}
		if r := fetch(t, c, "x", 1, 2); !r.Truncated {
			t.Fatalf("a fetch of a log kept by nobody: %+v", r)
		}
	})
	t.Run("entries are kept until the replica applied them", func(t *testing.T) {
		c := newTestCore("a")
		leadWith(t, c, "b")
		_, _ = stepAll(t, c, write(1, AckPrimary, setOp("k", "1")), write(2, AckPrimary, setOp("k", "2")), write(3, AckAll, setOp("k", "3")))
		if got := seqsOf(c.log.entries); len(got) != 3 {
			t.Fatalf("before any ack the log holds %v, want 1..3", got)
		}
		_, _ = stepAll(t, c, Ack{P: 0, Term: c.term, Seq: 2, Node: "b"})
		if got := seqsOf(c.log.entries); len(got) != 1 || got[0] != 3 {
			t.Fatalf("after b applied 2 the log holds %v, want [3]", got)
		}
		if r := fetch(t, c, "b", 3, 3); r.Truncated || len(r.Entries) != 1 || string(r.Entries[0].Value) != "3" {
			t.Fatalf("fetch of 3: %+v", r)
		}
		// An ack=primary replica says how far it applied in its claims.
		_, _ = stepAll(t, c, Tick{Now: 2e9, Claims: map[string]Claim{"b": {Role: RoleReplica, Ready: true, Term: c.term, Seq: 3, Seen: 2e9}}})
		if n := len(c.log.entries); n != 0 {
			t.Fatalf("after b claimed 3 the log holds %d entries", n)
		}
	})
	t.Run("a claim of another term or of a replica syncing frees nothing", func(t *testing.T) {
		c := newTestCore("a")
		leadWith(t, c, "b")
		_, _ = stepAll(t, c, write(1, AckPrimary, setOp("k", "1")), write(2, AckPrimary, setOp("k", "2")))
		_, _ = stepAll(t, c, Tick{Now: 2e9, Claims: map[string]Claim{"b": {Role: RoleReplica, Ready: false, Term: c.term, Seq: 2, Seen: 2e9}}})
		_, _ = stepAll(t, c, Tick{Now: 3e9, Claims: map[string]Claim{"b": {Role: RoleReplica, Ready: true, Term: c.term + 1, Seq: 2, Seen: 3e9}}})
		if n := len(c.log.entries); n != 2 {
			t.Fatalf("the log holds %d entries, want 2", n)
		}
	})
	t.Run("a node not in the table that syncs is kept what follows its snapshot", func(t *testing.T) {
		c := newTestCore("a")
		leadAlone(t, c)
		_, _ = stepAll(t, c, write(1, AckPrimary, setOp("k", "1")))
		// b joins: its table names it a replica before ours does.
		effects, _ := stepAll(t, c, SnapshotRequest{P: 0, From: "b", Req: 1, FromPrimary: true})
		if r := effectsOf[send](effects)[0].Msg.(SnapshotResponse); r.Head.Seq != 1 {
			t.Fatalf("snapshot head %+v", r.Head)
		}
		_, _ = stepAll(t, c, write(2, AckPrimary, setOp("k", "2")), write(3, AckPrimary, setOp("k", "3")))
		if r := fetch(t, c, "b", 2, 3); r.Truncated || len(r.Entries) != 2 {
			t.Fatalf("b's fetch after its snapshot: %+v", r)
		}
		_, _ = stepAll(t, c, Ack{P: 0, Term: c.term, Seq: 3, Node: "b"})
		if n := len(c.log.entries); n != 0 {
			t.Fatalf("after b applied everything the log holds %d entries", n)
		}
		// b never says it follows: after the claim lag it is forgotten.
		_, _ = stepAll(t, c, Tick{Now: 1e9 + 3*c.cfg.ClaimLag})
		if _, ok := c.followers["b"]; ok {
			t.Fatal("a node that does not follow the term is still counted")
		}
	})
	t.Run("a stale Truncated does not make the replica sync", func(t *testing.T) {
		c := newTestCore("a")
		_, _ = stepAll(t, c, SetOwners{Owners: []string{"p", "a"}, Live: []string{"a", "p"}})
		pTerm := uint64(5)<<termNodeBits | termNode("p")
		_, _ = stepAll(t, c, SnapshotResponse{P: 0, From: "p", Req: c.sync.id, Head: ID{Term: pTerm, Seq: 3}})
		entry := func(seq uint64) Entry {
			return Entry{P: 0, Term: pTerm, Seq: seq, Key: "k", Value: []byte("v"), Version: 100 + seq}
		}
		effects, _ := stepAll(t, c, LogBatch{Batch: Batch{P: 0, Entries: []Entry{entry(5)}}, AckWanted: true})
		f := effectsOf[send](effects)[0].Msg.(FetchRequest)
		// Entry 4 comes again on the log before the fetch is answered;
		// the primary, acknowledged, forgot it.
		_, _ = stepAll(t, c, LogBatch{Batch: Batch{P: 0, Entries: []Entry{entry(4)}}, AckWanted: true})
		if c.seq != 5 {
			t.Fatalf("seq %d, want 5", c.seq)
		}
		_, _ = stepAll(t, c, FetchResponse{P: 0, From: "p", Req: f.Req, Truncated: true})
		if c.sync != nil || !c.ready {
			t.Fatal("a stale Truncated started a sync")
		}
	})
}

// A node alone in its table publishes no log batch: no replica would take
// it. Its change feed still sees every entry, and a node that joins later
// catches up.
func TestShellAloneSendsNoLog(t *testing.T) {
	c := newShellCluster(t)
	a := c.add("a")
	var mu sync.Mutex
	announced := 0
	a.r.Announce(func(_ int, entries []Entry) {
		mu.Lock()
		announced += len(entries)
		mu.Unlock()
	})
	watch := testkit.Connect(t, c.url)
	var logged, envelopes int
	var lmu sync.Mutex
	count := func(n *int) nats.MsgHandler {
		return func(*nats.Msg) { lmu.Lock(); *n++; lmu.Unlock() }
	}
	for p := range shellPartitions {
		if _, err := watch.Subscribe(a.r.cfg.Subjects.PartitionLog(p), count(&logged)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := watch.Subscribe(a.r.cfg.Subjects.NodeLog("*"), count(&envelopes)); err != nil {
		t.Fatal(err)
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	tab := c.table()
	c.serving(tab)
	versions := map[string]uint64{}
	for i := range 40 {
		key := string(rune('a'+i%26)) + "-key"
		ack := AckPrimary
		if i%2 == 0 {
			ack = AckAll
		}
		p := partition.Of(key, shellPartitions)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		res, err := a.r.Write(ctx, p, ack, []Op{{Set: &store.SetRequest{Key: key, Value: []byte("v")}}})
		cancel()
		if err != nil || res[0].Err != nil {
			t.Fatalf("write %s: %v %v", key, err, res)
		}
		versions[key] = res[0].Entry.Version
	}
	// Whatever a published has reached the server, and the server has
	// delivered to watch, once both connections' flushes are answered.
	if err := a.r.conn.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	lmu.Lock()
	if logged != 0 || envelopes != 0 {
		t.Errorf("a node alone sent %d log batches and %d envelopes", logged, envelopes)
	}
	lmu.Unlock()
	mu.Lock()
	if announced != 40 {
		t.Errorf("the change feed saw %d entries, want 40", announced)
	}
	mu.Unlock()
	for p := range shellPartitions {
		if n := len(a.r.parts[p].c.log.entries); n != 0 {
			t.Errorf("partition %d keeps %d log entries with no other owner", p, n)
		}
	}

	c.add("b")
	tab = c.table()
	c.serving(tab)
	for key, v := range versions {
		c.holds("b", key, v)
	}
	v := c.set(tab, "after-join", "x")
	c.holds("b", "after-join", v)
}
