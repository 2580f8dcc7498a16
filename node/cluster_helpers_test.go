package node

import (
	"fmt"
	"testing"
	"time"
)

// startClusterNode starts a node with a cluster port on loopback, fast
// heartbeats and no HTTP; edit changes its configuration, before changes
// the node before it starts.
func startClusterNode(t testing.TB, name string, edit func(c *Config), before func(n *Node)) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name = name
	cfg.Listen = "127.0.0.1:-1"
	cfg.ClusterListen = "127.0.0.1:-1"
	cfg.HTTP = HTTPOff
	cfg.HeartbeatInterval = 100 * time.Millisecond
	if edit != nil {
		edit(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(n)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// settled reports why n is not yet routing over servers servers with
// every partition it leads pulled in, or nil.
func settled(n *Node, servers int) error {
	if got := len(n.routing.Load().table.Members()); got != servers {
		return fmt.Errorf("%s routes over %d servers, want %d", n.cfg.Name, got, servers)
	}
	for p := range n.cfg.Partitions {
		if n.routing.Load().primary(p) && !n.repl.Ready(p) {
			return fmt.Errorf("%s still pulls in partition %d", n.cfg.Name, p)
		}
	}
	return nil
}
