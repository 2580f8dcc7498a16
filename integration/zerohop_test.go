package integration

// Zero-hop text API (docs/PROTOCOL.md, "Routing"): in a cluster, the
// embedded servers map each text request to its key's partition and the
// partition's primary subscribes to it, so a plain NATS request reaches the
// primary directly instead of being forwarded by the node the client is
// connected to. Keys of more tokens than the mappings take are still
// answered, forwarded; through a join and a leave every request is answered
// and reads see the acknowledged writes.

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/internal/testkit"
	"github.com/roostkv/roost/node"
)

// forwardedTotal sums roost_forwarded_total over nodes.
func forwardedTotal(t *testing.T, nodes []*node.Node) float64 {
	t.Helper()
	sum := 0.0
	for _, n := range nodes {
		sum += metricValue(t, scrape(t, n), "roost_forwarded_total")
	}
	return sum
}

// zeroHopKey is key i of tokens dot-separated tokens.
func zeroHopKey(i, tokens int) string {
	parts := make([]string, tokens)
	for j := range parts {
		parts[j] = fmt.Sprintf("t%d-%d", j, i)
	}
	return strings.Join(parts, ".")
}

// getSetRound sets and reads back keys 0..n-1 of the given token count
// through nc, and returns the fraction of these operations some node
// forwarded.
func getSetRound(t *testing.T, nodes []*node.Node, nc *nats.Conn, round, n, tokens int) float64 {
	t.Helper()
	before := forwardedTotal(t, nodes)
	for i := range n {
		key := zeroHopKey(i, tokens)
		val := fmt.Sprintf("v%d-%d", round, i)
		wantCode(t, "set "+key, request(t, nc, "roost.set."+key, []byte(val)), 200)
		r := request(t, nc, "roost.get."+key, nil)
		wantCode(t, "get "+key, r, 200)
		if string(r.body) != val {
			t.Fatalf("get %s = %q, want %q", key, r.body, val)
		}
	}
	return (forwardedTotal(t, nodes) - before) / float64(2*n)
}

func TestZeroHopTextAPI(t *testing.T) {
	t.Parallel()
	type round struct {
		tokens   int
		min, max float64 // the fraction of operations forwarded
	}
	for _, tc := range []struct {
		route  string
		rounds []round
	}{
		{"", []round{ // the default: partition
			// Keys the mappings take reach their primary directly.
			{1, 0, 0.02},
			{wire.MaxRoutedTokens, 0, 0.02},
			// Longer keys land on the node the client is connected to,
			// which forwards the two thirds it does not lead.
			{wire.MaxRoutedTokens + 1, 0.4, 0.9},
		}},
		// Without routing, as before: two thirds are forwarded.
		{node.TextRouteLocal, []round{{1, 0.4, 0.9}}},
	} {
		name := tc.route
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			if tc.route == node.TextRouteLocal && os.Getenv("ROOST_ZEROHOP_BASELINE") == "" {
				// It shows the test fails without routing (0.63 of the
				// operations forwarded); the 5-token round above shows the
				// same in the suite, in less time.
				t.Skip("the baseline without routing runs with ROOST_ZEROHOP_BASELINE=1")
			}
			nodes := startCluster(t, 3, func(_ int, c *node.Config) { c.TextRoute = tc.route })
			nc := connect(t, nodes[1])
			for _, r := range tc.rounds {
				// The primaries subscribe as they see their partitions
				// ready, and the peers hear of it: wait until a round is
				// served as it will be.
				eventually(t, 5*time.Second, func() error {
					if f := getSetRound(t, nodes, nc, 0, 50, r.tokens); f < r.min || f > r.max {
						return fmt.Errorf("%d-token keys: %.2f of the operations forwarded, want %.2f..%.2f", r.tokens, f, r.min, r.max)
					}
					return nil
				})
				f := getSetRound(t, nodes, nc, 1, 300, r.tokens)
				t.Logf("%s, %d-token keys: %.3f of 600 operations forwarded", tc.route, r.tokens, f)
				if f < r.min || f > r.max {
					t.Fatalf("%d-token keys: %.3f of the operations forwarded, want %.2f..%.2f", r.tokens, f, r.min, r.max)
				}
			}
		})
	}
}

// TestZeroHopThroughJoinAndLeave runs text reads and ack=all writes through
// every node while a fourth node joins and then leaves: every request is
// answered (a 503 is retried by the readers, as documented), every read
// sees the last acknowledged write, and afterwards every key reads back its
// value through every node, with routing settled (nothing forwarded).
func TestZeroHopThroughJoinAndLeave(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: a join and a leave under load take 10-20 s; the full suite runs it")
	}
	nodes := startCluster(t, 3, nil) // the default: --text-route partition
	const keys = 200
	l := newLedger(keys)
	nc := connect(t, nodes[0])
	for i := range keys {
		n := l.next(i)
		wantCode(t, "preload", request(t, nc, "roost.set."+ledgerKey(i), []byte(ledgerValue(i, n)), "Roost-Ack", "all"), 200)
		l.ack(i, n)
	}
	tr := startTraffic(t, nodes, l, 3, 2, keys/2)
	tr.awaitPasses(t, 1, 10*time.Second)

	n4 := startNode(t, func(c *node.Config) {
		c.Name = "n4"
		c.ClusterListen = "127.0.0.1:-1"
		c.Join = []string{nodes[0].Bus().ClusterAddr()}
		fastBeats(c)
	})
	all := append(nodes[:3:3], n4)
	waitMembers(t, all, 4, 10*time.Second)
	waitPrimariesReady(t, all, 10*time.Second)
	tr.awaitPasses(t, 2, 10*time.Second)

	n4.Stop()
	waitMembers(t, nodes, 3, 10*time.Second)
	waitPrimariesReady(t, nodes, 10*time.Second)
	tr.awaitPasses(t, 3, 10*time.Second)
	tr.stop(t, "join and leave")
	for why := range tr.unacked {
		if strings.Contains(why, nats.ErrNoResponders.Error()) {
			t.Errorf("a write found no node holding its partition's subject: %s", why)
		}
	}

	settleWrites(t, nc, l)
	checkAllKeys(t, nodes, l)
	eventually(t, 5*time.Second, func() error {
		before := forwardedTotal(t, nodes)
		for i := range 50 {
			request(t, connect(t, nodes[rand.IntN(3)]), "roost.get."+ledgerKey(i), nil)
		}
		if d := forwardedTotal(t, nodes) - before; d > 1 {
			return fmt.Errorf("%v of 50 gets forwarded after the leave", d)
		}
		return nil
	})
}

// TestZeroHopExternalNATS: an operator's nats-server, configured from a
// file with the block `roost mappings` prints (the one docs/PROTOCOL.md
// shows), routes text requests to their primaries as the embedded servers
// do, whatever the nodes' --text-route.
func TestZeroHopExternalNATS(t *testing.T) {
	t.Parallel()
	skipInRaceStep(t, "the router it drives is raced by TestZeroHopTextAPI")
	conf := wire.MappingsConf(wire.NewSubjects("").TextMappings(node.TextOps(), node.DefaultPartitions))
	doc, err := os.ReadFile("../docs/PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), conf) {
		t.Errorf("docs/PROTOCOL.md does not show the mappings `roost mappings` prints:\n%s", conf)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte("listen: 127.0.0.1:-1\n"+conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server does not take the mappings: %v", err)
	}
	opts.NoSigs, opts.NoLog = true, true
	srv := testkit.StartNATS(t, func(o *server.Options) { *o = *opts })
	var nodes []*node.Node
	for _, name := range []string{"e1", "e2", "e3"} {
		nodes = append(nodes, startNode(t, func(c *node.Config) {
			c.Name = name
			c.NATSURL = srv.ClientURL()
			if name == "e3" {
				c.TextRoute = node.TextRouteLocal // no effect with --nats: every node holds its routed subjects
			}
			fastBeats(c)
		}))
	}
	waitMembers(t, nodes, 3, 5*time.Second)
	waitPrimariesReady(t, nodes, 10*time.Second)
	nc := testkit.Connect(t, srv.ClientURL())
	// A former primary lets go of a subject routeGrace after it stopped
	// leading it: wait for the cluster's first tables to settle.
	eventually(t, 8*time.Second, func() error {
		if f := getSetRound(t, nodes, nc, 0, 50, 2); f > 0.02 {
			return fmt.Errorf("%.2f of the operations forwarded", f)
		}
		return nil
	})
	if f := getSetRound(t, nodes, nc, 1, 300, 2); f > 0.02 {
		t.Fatalf("%.3f of the operations forwarded, want about none", f)
	}
}
