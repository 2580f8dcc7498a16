package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/internal/testkit"
)

// BenchmarkClusterFeedPace measures what the feed's pace saves a write on
// three nodes (R=2, the Go client's sets with ack=primary, 32 callers, 100
// bytes over 100k keys): the same cluster with the publisher's rest at 0
// (a message per gathered batch, as before) and at feedLinger, the
// sub-benchmarks alternating within one process so that the machine's load
// hits both alike, and with the feed off (nothing announced: the bound of
// what any pace could save). The keys are written once first, so that
// every variant overwrites; the variants run in the order A B C C B A, so
// that a drift of the machine's load over the run weighs on each alike
// (-count repeats each sub-benchmark in a row: run the binary again
// instead). It reports the whole process's
// CPU per set (nodes, client and harness), the feed's messages per set
// (all three nodes), and the feed messages each node sends a second.
func BenchmarkClusterFeedPace(b *testing.B) {
	nodes := startPaceCluster(b)
	c, err := client.Connect(nodes[0].ClientURL(), client.WithAck(wire.AckPrimary))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	value := make([]byte, 100)
	var fill sync.WaitGroup
	for g := range 32 {
		fill.Go(func() {
			for i := g; i < 100_000; i += 32 {
				if _, err := c.Set(context.Background(), "key"+strconv.Itoa(i), value); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	fill.Wait()
	for _, linger := range []time.Duration{0, feedLinger, -1, -1, feedLinger, 0} {
		name := "linger=" + linger.String()
		if linger < 0 {
			name = "off"
		}
		b.Run(name, func(b *testing.B) {
			for _, n := range nodes {
				n.feed.linger.Store(int64(max(linger, 0)))
				if linger < 0 {
					n.repl.Announce(nil)
					defer n.repl.Announce(n.feed.onLogged)
				}
			}
			sent := func() (total uint64) {
				for _, n := range nodes {
					total += n.feed.nc.Stats().OutMsgs
				}
				return total
			}
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			msgs0, cpu0 := sent(), cpuTime(b)
			b.ResetTimer()
			for g := range 32 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 2))
					for next.Add(1) <= int64(b.N) {
						if _, err := c.Set(context.Background(), "key"+strconv.Itoa(rng.IntN(100_000)), value); err != nil {
							failed.Store(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatal(err)
			}
			msgs := float64(sent() - msgs0)
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(msgs/float64(b.N), "feed-msgs/op")
			b.ReportMetric(msgs/float64(len(nodes))/b.Elapsed().Seconds(), "feed-msgs/s/node")
		})
	}
}

// startPaceCluster starts three nodes on loopback, n2 and n3 joining n1's
// routes, and waits until all see all alive and route by one table.
func startPaceCluster(b *testing.B) []*Node {
	b.Helper()
	var nodes []*Node
	for i := range 3 {
		nodes = append(nodes, startClusterNode(b, fmt.Sprintf("n%d", i+1), func(c *Config) {
			c.HeartbeatInterval = DefaultConfig().HeartbeatInterval
			c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			if i > 0 {
				c.Join = []string{nodes[0].Bus().ClusterAddr()}
			}
		}, nil))
	}
	testkit.Eventually(b, 20*time.Second, func() error {
		t0 := fmt.Sprint(nodes[0].Table().Owners)
		for _, n := range nodes {
			alive := 0
			for _, m := range n.Members().Members {
				if m.Status == membership.Alive {
					alive++
				}
			}
			if alive != len(nodes) || fmt.Sprint(n.Table().Owners) != t0 {
				return fmt.Errorf("%s sees %d alive members, or routes by another table", n.cfg.Name, alive)
			}
		}
		return nil
	})
	return nodes
}
