package bench

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/client"
)

// BenchmarkNearCache compares, in one run, gets through the Go client with
// its near cache off and on, and a raw echo responder on the same embedded
// server: 32 callers, Zipf(1.1) keys over 100k keys of 100 bytes (key 0 the
// hottest). Each client variant reports its throughput as a ratio to the
// echo measured just before it ("x-echo"), and the near cache its hit ratio.
// The near cache holds every key (64 MiB), for a minute each.
func BenchmarkNearCache(b *testing.B) {
	const zipfS = 1.1
	n := startBenchNode(b)
	startEcho(b, n, "bench.echo.get", make([]byte, benchValueSize))
	nc := dial(b, n.ClientURL())
	ctx := context.Background()
	var echo float64 // ops/s of the echo in this run
	// The keys' names and a long Zipf(1.1) sample of their indexes, made
	// beforehand, so that both clients spend no time on them: each call
	// picks a random place in the sample.
	names := make([]string, benchKeys)
	for i := range names {
		names[i] = benchKey(i)
	}
	sample := make([]int32, 1<<21)
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), zipfS, 1, benchKeys-1)
	for i := range sample {
		sample[i] = int32(z.Uint64())
	}
	zipfGets := func(c *client.Client) func(b *testing.B) {
		return func(b *testing.B) {
			ops := runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
				_, err := c.Get(ctx, names[sample[rng.IntN(len(sample))]])
				return err
			})
			if echo > 0 {
				b.ReportMetric(ops/echo, "x-echo")
			}
		}
	}
	b.Run("echo-get", func(b *testing.B) {
		echo = runConcurrent(b, benchConcurrency, func(*rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "bench.echo.get"})
		})
	})
	off, err := client.Connect(n.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer off.Close()
	b.Run("client-zipf-near-off", zipfGets(off))
	on, err := client.Connect(n.ClientURL(), client.WithNearCache(64<<20, time.Minute))
	if err != nil {
		b.Fatal(err)
	}
	defer on.Close()
	// Measure the near cache in its steady state: once it follows the
	// feed (its first beacon), not in the second before.
	for deadline := time.Now().Add(5 * time.Second); on.NearCacheStats().Hits == 0; {
		if _, err := on.Get(ctx, benchKey(0)); err != nil || time.Now().After(deadline) {
			b.Fatalf("the near cache serves nothing after 5 s: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Cold: from an empty near cache, as a process starts (every first read
	// of a key misses; Zipf's tail makes many). Warm: the same client right
	// after, its entries younger than their ttl.
	for _, name := range []string{"client-zipf-near-on-cold", "client-zipf-near-on-warm"} {
		b.Run(name, func(b *testing.B) {
			before := on.NearCacheStats()
			zipfGets(on)(b)
			s := on.NearCacheStats()
			if gets := s.Hits + s.Misses - before.Hits - before.Misses; gets > 0 {
				b.ReportMetric(float64(s.Hits-before.Hits)/float64(gets), "hit-ratio")
			}
		})
	}
}
