package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/bench/harness"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

// BenchmarkReplicationLag writes with ack=primary through the Go client to
// a three-node cluster (R=2) and reports how long after its primary a
// replica applied each entry (p50 and p99 over every replica's entries,
// from the hybrid clock versions; see actors/replicator/lag.go).
func BenchmarkReplicationLag(b *testing.B) {
	nodes := startBenchCluster(b)
	c, err := client.Connect(nodes[0].ClientURL(), client.WithAck(wire.AckPrimary))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	for _, n := range nodes {
		n.ReplicationLag() // start counting here
	}
	value := make([]byte, benchValueSize)
	ctx := context.Background()
	b.ResetTimer()
	runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
		_, err := c.Set(ctx, benchKey(rng.IntN(benchKeys)), value)
		return err
	})
	b.StopTimer()
	var p50, p99 time.Duration
	var entries int64
	for _, n := range nodes {
		l := n.ReplicationLag()
		entries += l.Entries
		p50, p99 = max(p50, l.P50), max(p99, l.P99)
	}
	if entries == 0 {
		b.Fatal("no replica applied an entry")
	}
	b.ReportMetric(float64(p50.Microseconds()), "lag-p50-µs")
	b.ReportMetric(float64(p99.Microseconds()), "lag-p99-µs")
}

// BenchmarkCatchUp measures how fast a node that was down catches up: n3 of
// a three-node cluster (R=2) is killed, catchUpKeys keys are written, a new
// n3 starts, and the time until it holds every partition it owns, synced,
// gives the rate in records per second. One iteration per b.N.
func BenchmarkCatchUp(b *testing.B) {
	const catchUpKeys = 50_000
	nodes := startBenchCluster(b)
	nc := dial(b, nodes[0].ClientURL())
	value := make([]byte, benchValueSize)
	var rates []float64
	for i := range b.N {
		b.StopTimer()
		nodes[2].Kill()
		waitDead(b, nodes[:2], "n3")
		for k := 0; k < catchUpKeys; k += 1000 {
			var br wire.BatchRequest
			for j := k; j < k+1000; j++ {
				br.Ops = append(br.Ops, wire.Request{Op: wire.OpSet, Key: fmt.Sprintf("catchup%d.%d", i, j), Value: value})
			}
			data, err := wire.Marshal(&br)
			if err != nil {
				b.Fatal(err)
			}
			if err := request(context.Background(), nc, &nats.Msg{Subject: "roost.bin.batch", Data: data}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		nodes[2] = startClusterNode(b, "n3", nodes[0].Bus().ClusterAddr())
		held := waitSynced(b, nodes[2])
		took := time.Since(start)
		b.StopTimer()
		rates = append(rates, float64(held)/took.Seconds())
		b.Logf("n3 synced %d keys in %s", held, took.Round(time.Millisecond))
	}
	b.ReportMetric(harness.Median(rates), "records/s")
}

// waitDead waits until every node in nodes sees name dead.
func waitDead(b *testing.B, nodes []*node.Node, name string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		dead := 0
		for _, n := range nodes {
			for _, m := range n.Members().Members {
				if m.Name == name && m.Status == membership.Dead {
					dead++
				}
			}
		}
		if dead == len(nodes) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not dead on every node", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitSynced waits until n holds partitions and every one is synced, and
// returns the keys it holds.
func waitSynced(b *testing.B, n *node.Node) int64 {
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := n.Status()
		ready := len(st.Cluster.Replication) > 0 && len(st.Cluster.Replication) == len(st.Cluster.PrimaryOf)+len(st.Cluster.ReplicaOf)
		for _, p := range st.Cluster.Replication {
			ready = ready && p.Ready
		}
		if ready {
			return st.Store.Keys
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not synced: %d partitions held", n.Name(), len(st.Cluster.Replication))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
