package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
	"github.com/roostkv/roost/partition"
)

// clusterSize is the node count of the cluster benchmarks.
const clusterSize = 3

// startClusterNode starts a node on random loopback ports, with a route
// port, that joins the route address join ("" = none), logging nothing.
func startClusterNode(b *testing.B, name, join string) *node.Node {
	b.Helper()
	cfg := node.DefaultConfig()
	cfg.Name = name
	cfg.Listen = "127.0.0.1:-1"
	cfg.ClusterListen = "127.0.0.1:-1"
	cfg.HTTP = node.HTTPOff
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if join != "" {
		cfg.Join = []string{join}
	}
	return launch(b, cfg)
}

// startBenchCluster starts clusterSize nodes on random loopback ports, n2..
// joining n1's routes, and fills them, through n1, with benchKeys keys of
// benchValueSize bytes.
func startBenchCluster(b *testing.B) []*node.Node {
	b.Helper()
	nodes := make([]*node.Node, clusterSize)
	nodes[0] = startClusterNode(b, "n1", "")
	for i := 1; i < clusterSize; i++ {
		nodes[i] = startClusterNode(b, fmt.Sprintf("n%d", i+1), nodes[0].Bus().ClusterAddr())
	}
	waitClusterFormed(b, nodes)

	nc := dial(b, nodes[0].ClientURL())
	fillKeys(b, nc)
	// Every key on its primary and one replica (R=2), once the log is applied.
	deadline := time.Now().Add(30 * time.Second)
	for {
		total := int64(0)
		for _, n := range nodes {
			total += n.StoreStats().Keys
		}
		if total == 2*benchKeys {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the nodes hold %d keys together, want %d", total, 2*benchKeys)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nodes
}

// waitClusterFormed waits until every node sees every node alive and all
// route by the same table.
func waitClusterFormed(b *testing.B, nodes []*node.Node) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := clusterFormed(nodes)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func clusterFormed(nodes []*node.Node) error {
	t0 := fmt.Sprint(nodes[0].Table().Owners)
	for _, n := range nodes {
		alive := 0
		for _, m := range n.Members().Members {
			if m.Status == membership.Alive {
				alive++
			}
		}
		if alive != len(nodes) {
			return fmt.Errorf("%s sees %d alive members, want %d", n.Name(), alive, len(nodes))
		}
		if fmt.Sprint(n.Table().Owners) != t0 {
			return fmt.Errorf("%s routes by another table than %s", n.Name(), nodes[0].Name())
		}
	}
	return nil
}

// keysByPrimary splits the benchmark's key indexes into those whose
// primary is n (per n's table) and the others.
func keysByPrimary(n *node.Node) (local, remote []int) {
	t := n.Table()
	for i := range benchKeys {
		if owners := t.Owners[partition.Of(benchKey(i), t.Partitions)]; len(owners) > 0 && owners[0] == n.Name() {
			local = append(local, i)
		} else {
			remote = append(remote, i)
		}
	}
	return local, remote
}

// BenchmarkCluster3 compares, in one run, gets on a three-node cluster with
// a raw echo responder on n1's embedded server: text-API gets sent to n1 of
// keys n1 does not lead (get-forwarded) and of keys it leads (get-local),
// and the Go client connected to n1, which sends each get straight to its
// primary, with and without batching. 32 requesters, 100-byte values over
// 100k keys. vs-echo is each variant's ops/s over the mean ops/s of the echo
// repetitions of the same run (-count).
//
// NATS hands a request for a queue group to any member in the cluster, not
// the nearest, so a text-API get sent to n1 is served by any of the three
// nodes at random: about two thirds of get-local's and of get-forwarded's
// gets are forwarded. Only the client picks the node that serves a key.
func BenchmarkCluster3(b *testing.B) {
	nodes := startBenchCluster(b)
	n1 := nodes[0]
	value := make([]byte, benchValueSize)
	startEcho(b, n1, "bench.echo.get", value) // like a get: empty request, 100-byte reply
	nc := dial(b, n1.ClientURL())
	ctx := context.Background()
	local, remote := keysByPrimary(n1)
	b.Logf("n1 leads %d of %d keys", len(local), benchKeys)

	var echo []float64 // ops/s of each repetition of echo, as measured last
	opsPerSec := func(b *testing.B) float64 { return float64(b.N) / b.Elapsed().Seconds() }
	vsEcho := func(b *testing.B) {
		sum := 0.0
		for _, e := range echo {
			sum += e
		}
		if sum > 0 {
			b.ReportMetric(opsPerSec(b)/(sum/float64(len(echo))), "vs-echo")
		}
	}
	getText := func(keys []int) func(b *testing.B) {
		return func(b *testing.B) {
			runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
				return request(ctx, nc, &nats.Msg{Subject: "roost.get." + benchKey(keys[rng.IntN(len(keys))])})
			})
			vsEcho(b)
		}
	}

	b.Run("echo", func(b *testing.B) {
		if b.N == 1 { // the first call of each repetition
			echo = append(echo, 0)
		}
		runConcurrent(b, benchConcurrency, func(*rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "bench.echo.get"})
		})
		echo[len(echo)-1] = opsPerSec(b)
	})
	setText := func(ack string) func(b *testing.B) {
		return func(b *testing.B) {
			value := make([]byte, benchValueSize)
			runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
				msg := &nats.Msg{Subject: "roost.set." + benchKey(rng.IntN(benchKeys)), Data: value, Header: nats.Header{}}
				msg.Header.Set("Roost-Ack", ack)
				return request(ctx, nc, msg)
			})
			vsEcho(b)
		}
	}
	clientSet := func(ack string) func(b *testing.B) {
		return func(b *testing.B) {
			c, err := client.Connect(n1.ClientURL(), client.WithAck(ack))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			value := make([]byte, benchValueSize)
			runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
				_, err := c.Set(ctx, benchKey(rng.IntN(benchKeys)), value)
				return err
			})
			vsEcho(b)
		}
	}
	b.Run("set-ack-primary", setText(wire.AckPrimary))
	b.Run("set-ack-all", setText(wire.AckAll))
	b.Run("client-set-ack-primary", clientSet(wire.AckPrimary))
	b.Run("client-set-ack-all", clientSet(wire.AckAll))
	b.Run("get-forwarded", getText(remote))
	b.Run("get-local", getText(local))
	b.Run("client-get", clientGets(n1.ClientURL(), vsEcho))
	b.Run("client-get-nobatch", clientGets(n1.ClientURL(), vsEcho, client.WithBatching(false)))
}
