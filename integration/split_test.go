package integration

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/integration/netfault"
	"github.com/roostkv/roost/node"
)

// startSplitCluster starts size nodes n1..nN on loopback, like startCluster,
// except that every route of the last node runs through the returned proxy:
// proxy.Cut isolates it from all the others (who stay connected among
// themselves), proxy.Heal lets its routes back. Everything stops when the
// test ends.
//
// NATS routes are gossiped: when a server gains a route, it tells its other
// peers the new server's route address and they dial it directly, which
// would bypass a proxy in front of anyone. So the proxy sits in front of the
// last node, which advertises the proxy's address as its route address
// (Config.ClusterAdvertise) and dials nobody itself: n1 routes to it through
// the proxy once n1..n(N-1) have formed, and the others learn the proxy's
// address from n1 and dial that. The last node only ever accepts routes,
// all through the proxy, and never learns a peer's own route address
// (gossip reaches it only about routes new to n1, and n1's routes to the
// majority never break). A node started later and joined to n1 would be
// gossiped to the last node, which would dial it directly: start every node
// here.
//
// edit changes node i's config (0-based) after the harness's settings.
func startSplitCluster(t *testing.T, size int, edit func(i int, c *node.Config)) ([]*node.Node, *netfault.Proxy) {
	t.Helper()
	if size < 2 {
		t.Fatalf("startSplitCluster: size %d, need at least 2", size)
	}
	last := size - 1
	// The proxy must know the last node's route address before the node
	// starts (it advertises the proxy), so that address is picked here.
	routeAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	proxy, err := netfault.NewProxy(routeAddr)
	if err != nil {
		t.Fatalf("netfault.NewProxy: %v", err)
	}
	t.Cleanup(proxy.Close) // after every node has stopped

	nodes := make([]*node.Node, size)
	for i := range size {
		nodes[i] = startNode(t, func(c *node.Config) {
			c.Name = fmt.Sprintf("n%d", i+1)
			c.ClusterListen = "127.0.0.1:-1"
			switch i {
			case 0: // listens; the others join it
			case last:
				c.ClusterListen = routeAddr
				c.ClusterAdvertise = proxy.Addr()
			default:
				c.Join = []string{nodes[0].Bus().ClusterAddr()}
			}
			fastBeats(c)
			if edit != nil {
				edit(i, c)
			}
		})
	}
	if err := nodes[0].Bus().AddRoute(proxy.Addr()); err != nil {
		t.Fatalf("n1 routes to %s through the proxy: %v", nodes[last].Name(), err)
	}
	waitMembers(t, nodes, size, 5*time.Second)
	// Seeing every member is not having taken the table in: until each
	// partition's primary is ready, a write may get the documented 503
	// ("moving to another primary").
	waitPrimariesReady(t, nodes, 10*time.Second)
	return nodes, proxy
}

// TestSplitHarnessCutsAndHeals: a cut isolates the last node on both sides
// (and only it), a heal brings it back; twice, so that a heal provably
// leaves no route of the last node outside the proxy.
func TestSplitHarnessCutsAndHeals(t *testing.T) {
	t.Parallel()
	skipInRaceStep(t, "it tests the test harness (netfault); TestSplitBrainConverges races the cut and heal")
	nodes, proxy := startSplitCluster(t, 3, nil)
	majority, isolated := nodes[:2], nodes[2]
	for round := 1; round <= 2; round++ {
		start := time.Now()
		proxy.Cut()
		eventually(t, 2*time.Second, func() error {
			if r := isolated.Bus().Routes(); r != 0 {
				return fmt.Errorf("%s still has %d route connections", isolated.Name(), r)
			}
			return nil
		})
		routesGone := time.Since(start)
		waitSidesApart(t, majority, isolated)
		t.Logf("round %d: cut: %s has no routes after %s, both sides see the other dead after %s",
			round, isolated.Name(), routesGone.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		// The majority still sees itself whole, and routes without n3.
		waitMembers(t, majority, 2, time.Second)

		start = time.Now()
		proxy.Heal()
		waitMembers(t, nodes, 3, 10*time.Second)
		t.Logf("round %d: heal: all alive, one table after %s", round, time.Since(start).Round(time.Millisecond))
	}
}

// waitSidesApart waits until the majority and the isolated node each see
// the other side dead.
func waitSidesApart(t *testing.T, majority []*node.Node, isolated *node.Node) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		for _, n := range majority {
			if s := memberStatus(n, isolated.Name()); s != membership.Dead {
				return fmt.Errorf("%s sees %s %s", n.Name(), isolated.Name(), s)
			}
			if s := memberStatus(isolated, n.Name()); s != membership.Dead {
				return fmt.Errorf("%s sees %s %s", isolated.Name(), n.Name(), s)
			}
		}
		return nil
	})
}
