package integration

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/node"
)

// TestExternalNATS runs a node with --nats against a separate nats-server
// (the deployment a team already has) instead of embedding one: clients of
// that server reach the cache.
func TestExternalNATS(t *testing.T) {
	t.Parallel()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, Authorization: "ext-token"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("external server not ready")
	}

	n := startNode(t, func(c *node.Config) {
		c.NATSURL = srv.ClientURL()
		c.Token = "ext-token"
		c.Listen = "" // ignored with --nats
	})
	if n.Bus().Embedded() {
		t.Fatal("node embedded a server despite --nats")
	}
	nc, err := nats.Connect(srv.ClientURL(), nats.Token("ext-token"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	wantCode(t, "set through the external server", request(t, nc, "roost.set.ext", []byte("v")), 200)
	if r := request(t, nc, "roost.get.ext", nil); r.code != 200 || string(r.body) != "v" {
		t.Fatalf("get through the external server = %d %q", r.code, r.body)
	}
	if srv.NumClients() < 2 {
		t.Fatalf("external server has %d clients, want the node's and the test's", srv.NumClients())
	}
}

// TestClusterThroughExternalNATS: nodes that all use --nats with the same
// external server form one cluster through it, with no routes of their own.
func TestClusterThroughExternalNATS(t *testing.T) {
	t.Parallel()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(5 * time.Second) {
		t.Fatal("external server not ready")
	}
	var nodes []*node.Node
	for _, name := range []string{"e1", "e2", "e3"} {
		nodes = append(nodes, startNode(t, func(c *node.Config) {
			c.Name = name
			c.NATSURL = srv.ClientURL()
			fastBeats(c)
		}))
	}
	waitMembers(t, nodes, 3, 5*time.Second)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	for i := range 300 {
		wantCode(t, "set", request(t, nc, fmt.Sprintf("roost.set.ext.%d", i), []byte(fmt.Sprint(i))), 200)
	}
	held := int64(0)
	for _, n := range nodes {
		if k := n.StoreStats().Keys; k == 0 || k == 300 {
			t.Fatalf("%s holds %d of 300 keys: not spread", n.Name(), k)
		} else {
			held += k
		}
	}
	for i := range 300 {
		if r := request(t, nc, fmt.Sprintf("roost.get.ext.%d", i), nil); r.code != 200 || string(r.body) != fmt.Sprint(i) {
			t.Fatalf("get ext.%d = %d %q", i, r.code, r.body)
		}
	}
	if held < 300 {
		t.Fatalf("nodes hold %d keys together, want at least 300", held)
	}
	eventually(t, 5*time.Second, func() error {
		held := int64(0)
		for _, n := range nodes {
			held += n.StoreStats().Keys
		}
		if held != 600 {
			return fmt.Errorf("nodes hold %d keys together, want 600 (each key on its primary and one replica)", held)
		}
		return nil
	})
}
