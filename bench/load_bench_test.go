package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/node"
)

// BenchmarkMiss measures what a get of an absent key costs with no loader
// listening (read-through, docs/PROTOCOL.md "Loaders"), beside a raw echo
// and a hit in the same run: compare miss/echo between two builds.
//
//	go test -run '^$' -bench 'Miss' -benchtime 2s -count 5 ./bench/
func BenchmarkMiss(b *testing.B) {
	n := launch(b, benchConfig("miss"))
	startEcho(b, n, "bench.echo.get", make([]byte, benchValueSize))
	nc := dial(b, n.ClientURL())
	value := make([]byte, benchValueSize)
	for i := range 1000 {
		if err := request(context.Background(), nc, &nats.Msg{Subject: "roost.set.hit" + strconv.Itoa(i), Data: value}); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.Run("echo", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(*rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "bench.echo.get"})
		})
	})
	b.Run("miss", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			return wantCode(ctx, nc, "roost.get.absent"+strconv.Itoa(rng.IntN(benchKeys)), "404")
		})
	})
	b.Run("hit", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "roost.get.hit" + strconv.Itoa(rng.IntN(1000))})
		})
	})
}

// BenchmarkLoaderStampede sends 1,000 concurrent gets of 10 absent keys
// (100 each) whose loader takes 1 ms per load, to one node and to a
// 3-node cluster (the gets spread over the nodes, the loader on n1), and
// reports the loads per key (1 is single-flight) and the 50th and 99th
// percentile latency of a get. Each iteration is one stampede on 10 new
// keys.
//
//	go test -run '^$' -bench 'LoaderStampede' -benchtime 20x -count 3 ./bench/
func BenchmarkLoaderStampede(b *testing.B) {
	b.Run("1node", func(b *testing.B) {
		runStampede(b, []*node.Node{launch(b, benchConfig("stampede"))})
	})
	b.Run("3nodes", func(b *testing.B) {
		nodes := make([]*node.Node, clusterSize)
		nodes[0] = startClusterNode(b, "n1", "")
		for i := 1; i < clusterSize; i++ {
			nodes[i] = startClusterNode(b, fmt.Sprintf("n%d", i+1), nodes[0].Bus().ClusterAddr())
		}
		waitClusterFormed(b, nodes)
		waitPrimariesReady(b, nodes) // else the first gets wait for partitions still being pulled in
		runStampede(b, nodes)
	})
}

// runStampede is BenchmarkLoaderStampede on nodes.
func runStampede(b *testing.B, nodes []*node.Node) {
	const (
		gets  = 1000
		keys  = 10
		conns = 6
	)
	var loads atomic.Int64
	lc := dial(b, nodes[0].ClientURL())
	if _, err := lc.QueueSubscribe("roost.load.st.>", "loaders", func(m *nats.Msg) {
		loads.Add(1)
		go func() {
			time.Sleep(time.Millisecond) // the backend
			_ = m.Respond([]byte("loaded:" + strings.TrimPrefix(m.Subject, "roost.load.")))
		}()
	}); err != nil {
		b.Fatal(err)
	}
	if err := lc.Flush(); err != nil {
		b.Fatal(err)
	}
	// Every node's server must know of the loader (its interest travels
	// over the routes) before the first stampede.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		all := true
		for _, n := range nodes {
			if ok, _ := n.Bus().LoadInterest("roost.load.st.x", "roost.noload.st.x", "roost.load."); !ok {
				all = false
			}
		}
		if all {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the nodes do not see the loader")
		}
	}
	ncs := make([]*nats.Conn, conns)
	for i := range ncs {
		ncs[i] = dial(b, nodes[i%len(nodes)].ClientURL())
	}
	loads.Store(0)
	// wave sends the gets at once and returns their latencies.
	wave := func(round int) []time.Duration {
		took := make([]time.Duration, gets)
		errs := make([]error, gets)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range gets {
			wg.Go(func() {
				subject := fmt.Sprintf("roost.get.st.%d.%d", round, i%keys)
				<-start
				t0 := time.Now()
				errs[i] = wantCode(context.Background(), ncs[i%conns], subject, "")
				took[i] = time.Since(t0)
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		return took
	}
	var lat, hitLat []time.Duration
	b.ResetTimer()
	for round := range b.N {
		lat = append(lat, wave(round)...)
		b.StopTimer()
		hitLat = append(hitLat, wave(round)...) // the same gets again, all hits: the baseline
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(hitLat)
	b.ReportMetric(float64(loads.Load())/float64(b.N*keys), "loads/key")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(hitLat[len(hitLat)*99/100].Microseconds())/1000, "hit-p99-ms")
}

// waitPrimariesReady waits until every node serves every partition it
// leads.
func waitPrimariesReady(b *testing.B, nodes []*node.Node) {
	b.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ready := true
		for _, n := range nodes {
			for _, ps := range n.Status().Cluster.Replication {
				if ps.Role == "primary" && !ps.Ready {
					ready = false
				}
			}
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal("primaries not ready within 20s")
		}
	}
}

// benchConfig is a single node on random loopback ports, HTTP off.
func benchConfig(name string) node.Config {
	cfg := node.DefaultConfig()
	cfg.Name = name
	cfg.Listen = "127.0.0.1:-1"
	cfg.HTTP = node.HTTPOff
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return cfg
}

// wantCode sends a get and fails unless it is answered with code ("" = a
// value).
func wantCode(ctx context.Context, nc *nats.Conn, subject, code string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := nc.RequestWithContext(ctx, subject, nil)
	if err != nil {
		return err
	}
	if got := resp.Header.Get("Nats-Service-Error-Code"); got != code {
		return fmt.Errorf("%s: code %q (%s), want %q", subject, got, resp.Header.Get("Nats-Service-Error"), code)
	}
	return nil
}
