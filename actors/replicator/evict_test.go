package replicator

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/internal/testkit"
	"github.com/roostkv/roost/partition"
)

// Two nodes, R=2, hold more than their memory limit: each node evicts,
// as writes pass the limit or when the limit is lowered at run time (a
// pushed max_memory). Reads at the primaries make the copies' eviction
// policies see different things (a replica serves no reads), so left
// alone they would evict different keys, and anti-entropy would find the
// digests differ and bring the evicted keys back, to be evicted again,
// every round. The copies must agree once the rounds have run, and further
// rounds must repair nothing: no record set again, none evicted again.
func TestShellEvictionAndAntiEntropyAgree(t *testing.T) {
	t.Run("writes past the limit", func(t *testing.T) {
		scfg := store.DefaultConfig()
		scfg.MaxMemory = store.MinShardBudget // one shard of 4 MiB
		evictionsAgree(t, scfg, 0)
	})
	t.Run("limit lowered at run time", func(t *testing.T) {
		scfg := store.DefaultConfig()
		scfg.MaxMemory, scfg.Shards = 16*store.MinShardBudget, 1 // room for everything, until lowered to 4 MiB
		evictionsAgree(t, scfg, store.MinShardBudget)
	})
}

// evictionsAgree writes about 6 MiB into two nodes whose stores have scfg,
// reading half of it at the primaries, lowers their limit to lower if not
// 0, and checks the copies agree and stay so over anti-entropy rounds.
func evictionsAgree(t *testing.T, scfg store.Config, lower int64) {
	c := newShellCluster(t)
	byHand := func(cfg *Config) { cfg.AntiEntropy = -1 } // the test runs the rounds
	a, b := c.addWith("a", scfg, byHand), c.addWith("b", scfg, byHand)
	tab := c.table()
	c.serving(tab)
	c.safe("a")
	c.safe("b")

	value := strings.Repeat("v", 24<<10) // about 170 fit in 4 MiB
	key := func(i int) string { return fmt.Sprintf("k%03d", i) }
	for i := range 120 {
		c.set(tab, key(i), value)
	}
	for i := range 120 { // reads at the primaries, as clients read
		_, _ = c.nodes[tab.Owners(partition.Of(key(i), shellPartitions))[0]].st.Get(key(i))
	}
	for i := 120; i < 256; i++ {
		c.set(tab, key(i), value)
	}
	if lower != 0 {
		for _, n := range []*shellNode{a, b} {
			if _, err := n.st.SetMaxMemory(lower); err != nil {
				t.Fatal(err)
			}
		}
	}
	nodes := []*shellNode{a, b}
	for _, n := range nodes {
		if n.st.Stats().Evictions == 0 {
			t.Fatalf("%s evicted nothing: the test needs more data than its limit", n.name)
		}
	}

	// quiet waits until no partition on either node is syncing, pushing or
	// fetching, and both see every partition with its two copies in sync.
	quiet := func() {
		t.Helper()
		testkit.Eventually(t, 5*time.Second, func() error {
			for _, n := range nodes {
				if s := n.r.Safety(); !s.Safe() {
					return fmt.Errorf("%s: %+v", n.name, s)
				}
				for _, pt := range n.r.parts {
					if pt.busy.Load() {
						return fmt.Errorf("%s: partition %d busy", n.name, pt.p)
					}
				}
			}
			return nil
		})
	}
	round := func() {
		t.Helper()
		quiet()
		for _, n := range nodes {
			n.r.antiEntropy()
		}
		quiet()
	}
	type counts struct{ sets, evictions int64 }
	countsOf := func(n *shellNode) counts {
		s := n.st.Stats()
		return counts{s.Sets, s.Evictions}
	}

	round()
	round()
	before := []counts{countsOf(a), countsOf(b)}
	for range 3 {
		round()
	}
	for i, n := range nodes {
		if got := countsOf(n); got != before[i] {
			t.Errorf("%s: three more anti-entropy rounds set %d records again and evicted %d more: eviction and anti-entropy undo each other",
				n.name, got.sets-before[i].sets, got.evictions-before[i].evictions)
		}
	}
	// Each node leads some partitions and copies the others': each told
	// its replica of its evictions and followed the other's. An entry
	// followed came from a message the other node sent: one of its
	// Evicts as a primary or one of its forced reports as a replica.
	for i, n := range nodes {
		st, other := n.r.EvictionStats(), nodes[1-i].r.EvictionStats()
		if st.Sent == 0 || st.Followed == 0 {
			t.Errorf("%s: eviction stats %+v: want keys sent and followed", n.name, st)
		}
		if st.Followed > other.Sent+other.Forced {
			t.Errorf("%s followed %d evictions, more than %s sent (%+v)", n.name, st.Followed, nodes[1-i].name, other)
		}
	}
	all := map[int]bool{}
	for p := range shellPartitions {
		all[p] = true
	}
	da, db := a.r.digests(all), b.r.digests(all)
	for p := range shellPartitions {
		if da[p] != db[p] {
			t.Errorf("partition %d: a's copy %+v, b's %+v", p, da[p], db[p])
		}
	}
}

// The ghost remembers the latest evictedMax keys, each at its highest
// version evicted, and forgets the oldest first.
func TestGhostKeepsTheLatest(t *testing.T) {
	var g ghost
	for i := range evictedMax + 10 {
		g.add(fmt.Sprintf("k%d", i), uint64(i+1))
	}
	g.add("k20", 5) // a lower version changes nothing
	g.add("k21", 1000)
	if len(g.versions) != evictedMax || len(g.order) != evictedMax {
		t.Fatalf("remembers %d keys (%d in order), want %d", len(g.versions), len(g.order), evictedMax)
	}
	for i := range 10 {
		if _, ok := g.versions[fmt.Sprintf("k%d", i)]; ok {
			t.Fatalf("k%d, among the oldest, is still remembered", i)
		}
	}
	if g.versions["k20"] != 21 || g.versions["k21"] != 1000 || g.versions[fmt.Sprintf("k%d", evictedMax+9)] != evictedMax+10 {
		t.Fatalf("versions: k20 %d, k21 %d", g.versions["k20"], g.versions["k21"])
	}
}

// The core's part of eviction, step by step.
func TestCoreEvictions(t *testing.T) {
	evictsOf := func(effects []effect) []Evict {
		var out []Evict
		for _, s := range effectsOf[send](effects) {
			if m, ok := s.Msg.(Evict); ok {
				out = append(out, m)
			}
		}
		return out
	}
	// storeEvicts removes key from c's store as the store's eviction does,
	// and steps what the shell then steps.
	storeEvicts := func(t *testing.T, c *core, key string) ([]effect, uint64) {
		t.Helper()
		st := c.st.(*simStore)
		v := st.recs[key].Version
		delete(st.recs, key)
		effects, _ := stepAll(t, c, Evicted{Keys: []Evictee{{Key: key, Version: v}}})
		return effects, v
	}
	pTerm := uint64(5)<<termNodeBits | termNode("p")
	// replica makes c a synced replica of p at (pTerm, 3).
	replica := func(t *testing.T) *core {
		t.Helper()
		c := newTestCore("a")
		effects, _ := stepAll(t, c, SetOwners{Owners: []string{"p", "a"}, Live: []string{"a", "p"}})
		sr := effectsOf[send](effects)[0].Msg.(SnapshotRequest)
		_, _ = stepAll(t, c, SnapshotResponse{P: 0, From: "p", Req: sr.Req, Head: ID{Term: pTerm, Seq: 3}})
		if !c.ready {
			t.Fatal("replica not synced")
		}
		return c
	}
	entry := func(seq, version uint64, key string) LogBatch {
		return LogBatch{Batch: Batch{P: 0, Entries: []Entry{{P: 0, Term: pTerm, Seq: seq, Key: key, Value: []byte("v"), Version: version, Created: version}}}}
	}

	t.Run("the primary's eviction goes to every replica, after its head", func(t *testing.T) {
		c := newTestCore("a")
		leadWith(t, c, "b")
		_, _ = stepAll(t, c, write(1, AckPrimary, setOp("k", "1"), setOp("j", "2")))
		effects, v := storeEvicts(t, c, "k")
		ev := evictsOf(effects)
		if len(ev) != 1 || ev[0].Term != c.term || ev[0].Seq != c.seq || len(ev[0].Keys) != 1 || ev[0].Keys[0] != (Evictee{"k", v}) {
			t.Fatalf("evicts sent: %+v", effects)
		}
		if to := effectsOf[send](effects)[0].To; to != "b" {
			t.Fatalf("sent to %s", to)
		}
	})
	t.Run("a replica evicts once the log reaches the eviction, and never a newer version", func(t *testing.T) {
		c := replica(t)
		st := c.st.(*simStore)
		_, _ = stepAll(t, c, entry(4, 104, "x"))
		_, _ = stepAll(t, c, Evict{P: 0, From: "p", Term: pTerm, Seq: 5, Keys: []Evictee{{"x", 104}}})
		if _, ok := st.recs["x"]; !ok {
			t.Fatal("evicted before the log reached the eviction's head")
		}
		_, _ = stepAll(t, c, entry(5, 105, "y"))
		if _, ok := st.recs["x"]; ok {
			t.Fatal("not evicted once the log reached it")
		}
		_, _ = stepAll(t, c, entry(6, 106, "x"), Evict{P: 0, From: "p", Term: pTerm, Seq: 6, Keys: []Evictee{{"x", 104}}})
		if st.recs["x"].Version != 106 {
			t.Fatalf("an eviction of x@104 undid the newer write x@106: %+v", st.recs["x"])
		}
		_, _ = stepAll(t, c, Evict{P: 0, From: "q", Term: pTerm, Seq: 6, Keys: []Evictee{{"x", 106}}})
		if st.recs["x"].Version != 106 {
			t.Fatal("an eviction from a node that is not the primary applied")
		}
	})
	t.Run("a replica's forced eviction goes to its primary, which evicts everywhere", func(t *testing.T) {
		c := replica(t)
		_, _ = stepAll(t, c, entry(4, 104, "x"))
		effects, _ := storeEvicts(t, c, "x")
		if ev := evictsOf(effects); len(ev) != 1 || effectsOf[send](effects)[0].To != "p" || ev[0].Keys[0] != (Evictee{"x", 104}) {
			t.Fatalf("forced eviction reported as %+v", effects)
		}
		p := newTestCore("p")
		leadWith(t, p, "a")
		_, _ = stepAll(t, p, write(1, AckPrimary, setOp("k", "1")))
		v := p.st.(*simStore).recs["k"].Version
		effects, _ = stepAll(t, p, Evict{P: 0, From: "a", Term: p.term, Seq: p.seq, Keys: []Evictee{{"k", v}}})
		if _, ok := p.st.(*simStore).recs["k"]; ok {
			t.Fatal("the primary kept a key its replica had to evict")
		}
		if ev := evictsOf(effects); len(ev) != 1 || effectsOf[send](effects)[0].To != "a" {
			t.Fatalf("the primary's eviction did not go to its replicas: %+v", effects)
		}
	})
	t.Run("a snapshot carries the sender's evictions: the receiver evicts the older version it holds", func(t *testing.T) {
		c := newTestCore("a")
		st := c.st.(*simStore)
		st.recs["x"] = store.Record{Key: "x", Value: []byte("old"), Version: 50, Created: 50}
		effects, _ := stepAll(t, c, HoldCopy{}, SetOwners{Owners: []string{"p", "a"}, Live: []string{"a", "p"}})
		sr := effectsOf[send](effects)[0].Msg.(SnapshotRequest)
		_, _ = stepAll(t, c, SnapshotResponse{P: 0, From: "p", Req: sr.Req, Head: ID{Term: pTerm, Seq: 3}, Evicted: []Evictee{{"x", 60}}})
		if _, ok := st.recs["x"]; ok {
			t.Fatal("kept x@50 while its primary evicted x@60")
		}
		// ... and serves them with its own snapshots.
		resp := effectsOf[send](mustStep(t, c, SnapshotRequest{P: 0, From: "q", Req: 1}))[0].Msg.(SnapshotResponse)
		if len(resp.Evicted) != 1 || resp.Evicted[0] != (Evictee{"x", 60}) {
			t.Fatalf("snapshot's evictions: %+v", resp.Evicted)
		}
	})
	t.Run("the ghost refuses an evicted record pushed back, and the pusher evicts it", func(t *testing.T) {
		c := newTestCore("a")
		leadWith(t, c, "b")
		_, _ = stepAll(t, c, write(1, AckPrimary, setOp("k", "1")))
		older := c.st.(*simStore).recs["k"]
		_, _ = stepAll(t, c, write(2, AckPrimary, setOp("k", "2")))
		_, v := storeEvicts(t, c, "k")
		effects, _ := stepAll(t, c, PushRequest{P: 0, From: "b", Req: 7, Records: []Entry{entryOf(0, ID{}, older)}, Last: true})
		if _, ok := c.st.(*simStore).recs["k"]; ok {
			t.Fatal("an older version came back in place of the evicted one")
		}
		if ev := evictsOf(effects); len(ev) != 1 || ev[0].Keys[0] != (Evictee{"k", v}) {
			t.Fatalf("the pusher is not told to evict: %+v", effects)
		}
		newer := store.Record{Key: "k", Value: []byte("3"), Version: v + 1, Created: v + 1}
		_, _ = stepAll(t, c, PushRequest{P: 0, From: "b", Req: 8, Records: []Entry{entryOf(0, ID{}, newer)}, Last: true})
		if c.st.(*simStore).recs["k"].Version != v+1 {
			t.Fatal("a record newer than the eviction was refused")
		}
	})
}

// A node handing its copy to a primary that then loses the partition, and
// made a replica of another, drops the push to the first (refused for
// ever, it blocked every repair) and pushes to its new primary once synced.
func TestCoreReplicaDropsStalePush(t *testing.T) {
	c := newTestCore("a")
	_, _ = stepAll(t, c, HoldCopy{}, SetOwners{Owners: []string{"q", "b"}, Live: []string{"a", "b", "q"}},
		Tick{Now: 2e9, Claims: map[string]Claim{"q": {Role: RolePrimary, Ready: true, Term: 7, Seen: 2e9}}})
	if c.push == nil || c.push.to != "q" {
		t.Fatalf("no hand-off push to q: %+v", c.push)
	}
	effects, _ := stepAll(t, c, SetOwners{Owners: []string{"p", "a"}, Live: []string{"a", "b", "p", "q"}})
	if c.push != nil {
		t.Fatalf("the push to q, no longer primary, is kept: %+v", c.push)
	}
	sr := effectsOf[send](effects)[0].Msg.(SnapshotRequest)
	_, _ = stepAll(t, c, SnapshotResponse{P: 0, From: "p", Req: sr.Req, Head: ID{Term: 9, Seq: 1}})
	if c.push == nil || c.push.to != "p" {
		t.Fatalf("synced, the copy is not pushed to the new primary: %+v", c.push)
	}
}

func mustStep(t *testing.T, c *core, m Message) []effect {
	t.Helper()
	effects, _ := stepAll(t, c, m)
	return effects
}
