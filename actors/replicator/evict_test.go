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
