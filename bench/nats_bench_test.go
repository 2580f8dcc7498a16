package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

// Settings of the single-node NATS benchmarks, as issue #6 fixes them.
const (
	benchKeys        = 100_000 // keyspace
	benchValueSize   = 100     // bytes per value
	benchConcurrency = 32      // requesters in flight
)

// startBenchNode starts a node on random loopback ports, filled with
// benchKeys keys of benchValueSize bytes.
func startBenchNode(b *testing.B) *node.Node {
	b.Helper()
	return startBenchNodeWith(b, func(*node.Config) {})
}

// startBenchNodeWith is startBenchNode with edit applied to the config.
func startBenchNodeWith(b *testing.B, edit func(*node.Config)) *node.Node {
	b.Helper()
	cfg := node.DefaultConfig()
	cfg.Name = "bench"
	cfg.Listen = "127.0.0.1:-1"
	cfg.HTTP = node.HTTPOff
	edit(&cfg)
	n := launch(b, cfg)
	nc := dial(b, n.ClientURL())
	fillKeys(b, nc)
	if got := n.StoreStats().Keys; got != benchKeys {
		b.Fatalf("filled %d keys, want %d", got, benchKeys)
	}
	return n
}

// fillKeys writes benchKeys keys of benchValueSize bytes through nc, in
// binary batches of 1000.
func fillKeys(b *testing.B, nc *nats.Conn) {
	b.Helper()
	value := make([]byte, benchValueSize)
	const perBatch = 1000
	for i := 0; i < benchKeys; i += perBatch {
		var br wire.BatchRequest
		for j := i; j < min(i+perBatch, benchKeys); j++ {
			br.Ops = append(br.Ops, wire.Request{Op: wire.OpSet, Key: benchKey(j), Value: value})
		}
		data, err := wire.Marshal(&br)
		if err != nil {
			b.Fatal(err)
		}
		if err := request(context.Background(), nc, &nats.Msg{Subject: "roost.bin.batch", Data: data}); err != nil {
			b.Fatal(err)
		}
	}
}

// launch starts a node of cfg, stopped when the benchmark ends.
func launch(b *testing.B, cfg node.Config) *node.Node {
	b.Helper()
	n, err := node.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(n.Stop)
	return n
}

func benchKey(i int) string { return "key" + strconv.Itoa(i) }

func dial(b *testing.B, url string) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

// startEcho answers every request on subject with reply, on its own
// in-process connection to the node's server: what a cache would cost if it
// did no work at all.
func startEcho(b *testing.B, n *node.Node, subject string, reply []byte) {
	b.Helper()
	nc, err := n.Bus().Connect()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(reply) }); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
}

// runConcurrent runs b.N calls of op spread over c goroutines and reports
// throughput, which it returns (ops/s). op gets a per-goroutine random source.
func runConcurrent(b *testing.B, c int, op func(rng *rand.Rand) error) float64 {
	b.Helper()
	return runConcurrentN(b, c, 1, op)
}

// runConcurrentN is runConcurrent for an op that makes per operations: it
// runs b.N/per calls of op, and ops/s counts operations.
func runConcurrentN(b *testing.B, c, per int, op func(rng *rand.Rand) error) float64 {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range c {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 42))
			for next.Add(int64(per)) <= int64(b.N) {
				if err := op(rng); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	return float64(b.N) / elapsed.Seconds()
}

// request sends one request and fails on a NATS micro error reply.
func request(ctx context.Context, nc *nats.Conn, msg *nats.Msg) error {
	resp, err := nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return err
	}
	if code := resp.Header.Get("Nats-Service-Error-Code"); code != "" {
		return fmt.Errorf("%s: %s %s", msg.Subject, code, resp.Header.Get("Nats-Service-Error"))
	}
	return nil
}

// BenchmarkSingleNode compares, in one run, Roost's text-API get and set with
// a raw echo responder on the same embedded server, 32 requesters on one
// client connection, 100-byte values over 100k keys. The echo answers on a
// fixed subject (echo-get, echo-set) and on keyed ones (echo-keyed-get,
// echo-keyed-set: the key in the subject, as Roost's text API has it).
func BenchmarkSingleNode(b *testing.B) {
	n := startBenchNode(b)
	value := make([]byte, benchValueSize)
	startEcho(b, n, "bench.echo.get", value) // like a get: empty request, 100-byte reply
	startEcho(b, n, "bench.echo.set", nil)   // like a set: 100-byte request, empty reply
	// The keyed echo: the key in the subject and a wildcard subscription,
	// as Roost's text API has them, so that the server's subject cache
	// misses as often for the echo as for Roost (issue 15's baseline).
	startEcho(b, n, "bench.echok.get.>", value)
	startEcho(b, n, "bench.echok.set.>", nil)
	nc := dial(b, n.ClientURL())
	ctx := context.Background()

	b.Run("echo-get", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(*rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "bench.echo.get"})
		})
	})
	b.Run("echo-keyed-get", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "bench.echok.get." + benchKey(rng.IntN(benchKeys))})
		})
	})
	b.Run("get", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "roost.get." + benchKey(rng.IntN(benchKeys))})
		})
	})
	// The Go client, with its batching on and off, 32 callers on one
	// client: the batching target of issue #6.
	b.Run("client-get", clientGets(n.ClientURL(), nil))
	b.Run("client-get-nobatch", clientGets(n.ClientURL(), nil, client.WithBatching(false)))
	// The ceiling of batching: binary batches of 32 gets sent back to back
	// with no client library, by one sender (32 gets outstanding, as many as
	// 32 callers can have) and by four (128 outstanding).
	b.Run("raw-batch32-x1", rawBatches(nc, 32, 1))
	b.Run("raw-batch32-x4", rawBatches(nc, 32, 4))
	b.Run("echo-set", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(*rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "bench.echo.set", Data: value})
		})
	})
	// Interleaved: Roost and the keyed echo take turns in slices of a few
	// thousand requests within one b.N, so that a shared machine's drift
	// hits both alike; roost/echo is the ratio of their ops/s.
	b.Run("get-vs-keyed-echo", interleaved(
		func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "roost.get." + benchKey(rng.IntN(benchKeys))})
		},
		func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "bench.echok.get." + benchKey(rng.IntN(benchKeys))})
		}))
	b.Run("set-vs-keyed-echo", interleaved(
		func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "roost.set." + benchKey(rng.IntN(benchKeys)), Data: value})
		},
		func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "bench.echok.set." + benchKey(rng.IntN(benchKeys)), Data: value})
		}))
	b.Run("echo-keyed-set", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "bench.echok.set." + benchKey(rng.IntN(benchKeys)), Data: value})
		})
	})
	b.Run("set", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "roost.set." + benchKey(rng.IntN(benchKeys)), Data: value})
		})
	})
}

// interleaved returns a benchmark of b.N calls of roost and b.N of echo,
// each by benchConcurrency goroutines, taking turns in slices of
// interleaveSlice calls; it reports the ops/s of each and roost/echo.
func interleaved(roost, echo func(rng *rand.Rand) error) func(b *testing.B) {
	return func(b *testing.B) {
		const interleaveSlice = 2000
		var took [2]time.Duration // roost, echo
		var failed atomic.Pointer[error]
		slice := func(op func(rng *rand.Rand) error, calls, seed int) time.Duration {
			var next atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for g := range benchConcurrency {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(seed), uint64(g)))
					for next.Add(1) <= int64(calls) {
						if err := op(rng); err != nil {
							failed.CompareAndSwap(nil, &err)
							return
						}
					}
				})
			}
			wg.Wait()
			return time.Since(start)
		}
		b.ResetTimer()
		for done, i := 0, 0; done < b.N && failed.Load() == nil; done, i = done+interleaveSlice, i+1 {
			calls := min(interleaveSlice, b.N-done)
			took[0] += slice(roost, calls, i)
			took[1] += slice(echo, calls, i)
		}
		b.StopTimer()
		if err := failed.Load(); err != nil {
			b.Fatal(*err)
		}
		roostOps, echoOps := float64(b.N)/took[0].Seconds(), float64(b.N)/took[1].Seconds()
		b.ReportMetric(roostOps, "ops/s")
		b.ReportMetric(echoOps, "echo-ops/s")
		b.ReportMetric(roostOps/echoOps, "roost/echo")
	}
}

// rawBatches returns a benchmark of senders goroutines that each send
// batches of size random gets on the binary batch subject, one at a time;
// ops/s counts gets.
func rawBatches(nc *nats.Conn, size, senders int) func(b *testing.B) {
	return func(b *testing.B) {
		runConcurrentN(b, senders, size, func(rng *rand.Rand) error {
			br := wire.BatchRequest{Ops: make([]wire.Request, size)}
			for i := range br.Ops {
				br.Ops[i] = wire.Request{Op: wire.OpGet, Key: benchKey(rng.IntN(benchKeys))}
			}
			data, err := wire.Marshal(&br)
			if err != nil {
				return err
			}
			m, err := nc.Request("roost.bin.batch", data, 5*time.Second)
			if err != nil {
				return err
			}
			var resp wire.BatchResponse
			if err := wire.Unmarshal(m.Data, &resp); err != nil || len(resp.Results) != size {
				return fmt.Errorf("batch reply: %d results, %v", len(resp.Results), err)
			}
			return nil
		})
	}
}

// clientGets returns a benchmark of gets of random keys through a Go client
// connected to url with opts, by benchConcurrency goroutines; then runs
// after, if any.
func clientGets(url string, after func(*testing.B), opts ...client.Option) func(b *testing.B) {
	return func(b *testing.B) {
		c, err := client.Connect(url, opts...)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			_, err := c.Get(context.Background(), benchKey(rng.IntN(benchKeys)))
			return err
		})
		if after != nil {
			after(b)
		}
	}
}
