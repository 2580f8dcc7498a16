package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

// fastBeats makes in-process clusters detect changes quickly; the
// multi-process test keeps the defaults.
func fastBeats(c *node.Config) {
	c.HeartbeatInterval = 100 * time.Millisecond
}

// startCluster starts size nodes n1..nN on loopback; n2.. join n1's routes.
func startCluster(t *testing.T, size int, edit func(i int, c *node.Config)) []*node.Node {
	t.Helper()
	nodes := make([]*node.Node, size)
	for i := range size {
		nodes[i] = startNode(t, func(c *node.Config) {
			c.Name = fmt.Sprintf("n%d", i+1)
			c.ClusterListen = "127.0.0.1:-1"
			if i > 0 {
				c.Join = []string{nodes[0].Bus().ClusterAddr()}
			}
			fastBeats(c)
			if edit != nil {
				edit(i, c)
			}
		})
	}
	waitMembers(t, nodes, size, 5*time.Second)
	waitPrimariesReady(t, nodes, 10*time.Second)
	return nodes
}

// waitPrimariesReady waits until every node has pulled in every partition
// it leads, so that a test starts from a settled cluster.
func waitPrimariesReady(t *testing.T, nodes []*node.Node, within time.Duration) {
	t.Helper()
	eventually(t, within, func() error {
		for _, n := range nodes {
			for _, ps := range n.Status().Cluster.Replication {
				if ps.Role == "primary" && !ps.Ready {
					return fmt.Errorf("%s still pulls in partition %d", n.Name(), ps.Partition)
				}
			}
		}
		return nil
	})
}

// waitMembers waits until every node's view has want alive members and
// every node routes by a table over the same servers.
func waitMembers(t *testing.T, nodes []*node.Node, want int, within time.Duration) {
	t.Helper()
	eventually(t, within, func() error {
		servers := fmt.Sprint(nodes[0].Status().Cluster.Servers)
		for _, n := range nodes {
			if s := fmt.Sprint(n.Status().Cluster.Servers); s != servers {
				return fmt.Errorf("%s routes over %s, %s over %s", n.Name(), s, nodes[0].Name(), servers)
			}
			alive := 0
			for _, m := range n.Members().Members {
				if m.Status == membership.Alive {
					alive++
				}
			}
			if alive != want {
				return fmt.Errorf("%s sees %d alive members, want %d", n.Name(), alive, want)
			}
		}
		return nil
	})
}

func memberStatus(n *node.Node, name string) membership.Status {
	for _, m := range n.Members().Members {
		if m.Name == name {
			return m.Status
		}
	}
	return ""
}

func TestClusterForms(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	// Every node lists all three alive (startCluster waited for it) and the
	// same table.
	t0 := nodes[0].Table()
	for _, n := range nodes[1:] {
		if fmt.Sprint(n.Table().Owners) != fmt.Sprint(t0.Owners) {
			t.Fatalf("%s routes by another table than n1", n.Name())
		}
	}
	for _, n := range nodes {
		st := n.Status().Cluster
		if len(st.PrimaryOf) < 271/3-15 || len(st.PrimaryOf) > 271/3+15 {
			t.Fatalf("%s leads %d of 271 partitions, want about a third", n.Name(), len(st.PrimaryOf))
		}
	}
	// $SRV.PING.roost gets three answers.
	nc := connect(t, nodes[1])
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishRequest("$SRV.PING.roost", inbox, nil); err != nil {
		t.Fatal(err)
	}
	answers := 0
	for {
		if _, err := sub.NextMsg(time.Second); err != nil {
			break
		}
		answers++
	}
	if answers != 3 {
		t.Fatalf("$SRV.PING.roost got %d answers, want 3", answers)
	}
}

func TestAnyNodeAnswersForAnyKey(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	n1, n3 := connect(t, nodes[0]), connect(t, nodes[2])
	for i := range 1000 {
		wantCode(t, "set through n1", request(t, n1, fmt.Sprintf("roost.set.key.%d", i), []byte(fmt.Sprintf("value %d", i))), 200)
	}
	for i := range 1000 {
		r := request(t, n3, fmt.Sprintf("roost.get.key.%d", i), nil)
		if r.code != 200 || string(r.body) != fmt.Sprintf("value %d", i) {
			t.Fatalf("get key.%d through n3 = %d %q", i, r.code, r.body)
		}
	}
	// The data is spread: every node holds some of it, none all, and each
	// key is on two nodes (R=2) once the replicas applied the log.
	eventually(t, 5*time.Second, func() error {
		total := int64(0)
		for _, n := range nodes {
			k := n.StoreStats().Keys
			if k == 0 || k == 1000 {
				return fmt.Errorf("%s holds %d of 1000 keys", n.Name(), k)
			}
			total += k
		}
		if total != 2000 {
			return fmt.Errorf("nodes hold %d keys together, want 2000 (each key on its primary and one replica)", total)
		}
		return nil
	})
	// Batches, CAS and scans through a non-owner, with the Go client.
	c := dialClient(t, nodes[1], client.WithBatching(false))
	ctx := context.Background()
	items, err := c.MGet(ctx, "key.1", "key.500", "key.999", "missing")
	if err != nil || string(items[1].Value) != "value 500" || items[3].Found() {
		t.Fatalf("MGet through n2 = %+v, %v", items, err)
	}
	if _, err := c.CompareAndSwap(ctx, "key.7", []byte("x"), items[0].Version); !errors.Is(err, client.ErrCASMismatch) {
		t.Fatalf("CAS with another key's version: %v", err)
	}
	keys, err := c.Keys(ctx, "key.")
	if err != nil || len(keys) != 1000 {
		t.Fatalf("Keys across the cluster = %d, %v; want 1000", len(keys), err)
	}
	all, err := c.ScanAll(ctx, "key.", client.PageSize(64))
	if err != nil || len(all) != 1000 {
		t.Fatalf("ScanAll in 64-key pages = %d, %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Key >= all[i].Key {
			t.Fatalf("scan out of order at %d: %q then %q", i, all[i-1].Key, all[i].Key)
		}
	}
}

func TestProxyNodeRoutesAndHoldsNothing(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, func(i int, c *node.Config) {
		if i == 2 {
			c.Role = node.RoleProxy
		}
	})
	proxy := nodes[2]
	if got := proxy.Table().Owners[0]; len(got) == 0 || got[0] == proxy.Name() {
		t.Fatalf("proxy owns partition 0: %v", got)
	}
	nc := connect(t, proxy)
	for i := range 200 {
		wantCode(t, "set through the proxy", request(t, nc, fmt.Sprintf("roost.set.p%d", i), []byte("v")), 200)
	}
	for i := range 200 {
		wantCode(t, "get through the proxy", request(t, nc, fmt.Sprintf("roost.get.p%d", i), nil), 200)
	}
	if k := proxy.StoreStats().Keys; k != 0 {
		t.Fatalf("proxy holds %d keys", k)
	}
	eventually(t, 5*time.Second, func() error {
		if k := nodes[0].StoreStats().Keys + nodes[1].StoreStats().Keys; k != 400 {
			return fmt.Errorf("servers hold %d keys, want 400 (each key on both, R=2)", k)
		}
		return nil
	})
}

// TestGracefulLeaveAndNoStaleValues: a node that leaves is marked left at
// once and hands its partitions over; through leaves and joins every key
// answers the last value written, never 404 and never an older one.
func TestGracefulLeaveAndNoStaleValues(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	nc := connect(t, nodes[0])
	const keys = 300
	last := map[string]string{}
	write := func(round int) {
		for i := range keys {
			k := fmt.Sprintf("s%d", i)
			v := fmt.Sprintf("round %d", round)
			r := request(t, nc, "roost.set."+k, []byte(v))
			if r.code != 200 {
				t.Fatalf("round %d: set %s = %d %s", round, k, r.code, r.err)
			}
			last[k] = v
		}
	}
	check := func(when string) {
		t.Helper()
		for i := range keys {
			k := fmt.Sprintf("s%d", i)
			r := request(t, nc, "roost.get."+k, nil)
			if r.code != 200 || string(r.body) != last[k] {
				t.Fatalf("%s: get %s = %d %q %s, last written %q", when, k, r.code, r.body, r.err, last[k])
			}
		}
	}
	write(1)
	check("all up")

	start := time.Now()
	nodes[2].Stop()
	eventually(t, time.Second, func() error {
		if s := memberStatus(nodes[0], "n3"); s != membership.Left {
			return fmt.Errorf("n1 sees n3 %s", s)
		}
		return nil
	})
	t.Logf("n3 marked left after %s", time.Since(start))
	eventually(t, 2*time.Second, func() error {
		if s := nodes[0].Status().Cluster.Servers; len(s) != 2 {
			return fmt.Errorf("n1 routes over %v", s)
		}
		return nil
	})
	check("n3 left")
	write(2)
	check("written without n3")

	// n3 comes back (a new incarnation) and takes its partitions again.
	back := startNode(t, func(c *node.Config) {
		c.Name = "n3"
		c.ClusterListen = "127.0.0.1:-1"
		c.Join = []string{nodes[0].Bus().ClusterAddr()}
		fastBeats(c)
	})
	waitMembers(t, []*node.Node{nodes[0], nodes[1], back}, 3, 5*time.Second)
	check("n3 back")
	write(3)
	check("written with n3 back")
}
