package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/node"
)

// largeKeys is the keyspace of BenchmarkLargeValues: few keys, so that
// 512 KiB values stay far under the default --max-memory.
const largeKeys = 64

// BenchmarkLargeValues compares, in one run and one process, Roost's
// text-API get of 64 KiB and 512 KiB values with a fair echo: a responder
// on an in-process connection to the node's own server that answers with a
// payload of the same size, allocated once (so the same GC settings and the
// same bus; the echo does no work per request beyond NATS's). With
// -cpuprofile and -memprofile, run one sub-benchmark at a time
// (-bench 'LargeValues/get-64KiB$') to see where Roost's own cost goes;
// BENCHMARKS.md, "Scaling tables (issue 15)", has the figures.
func BenchmarkLargeValues(b *testing.B) {
	n := launch(b, benchNodeConfig())
	nc := dial(b, n.ClientURL())
	ctx := context.Background()
	for _, size := range []int{64 << 10, 512 << 10} {
		name := fmt.Sprintf("%dKiB", size>>10)
		value := make([]byte, size)
		for i := range largeKeys {
			if err := request(ctx, nc, &nats.Msg{Subject: "roost.set." + largeKey(size, i), Data: value}); err != nil {
				b.Fatal(err)
			}
		}
		echoSubject := "bench.large." + name + ".get"
		startEcho(b, n, echoSubject, value)
		b.Run("echo-get-"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			runConcurrent(b, benchConcurrency, func(*rand.Rand) error {
				return request(ctx, nc, &nats.Msg{Subject: echoSubject})
			})
		})
		b.Run("get-"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
				return request(ctx, nc, &nats.Msg{Subject: "roost.get." + largeKey(size, rng.IntN(largeKeys))})
			})
		})
	}
}

func largeKey(size, i int) string { return fmt.Sprintf("large%d.%d", size, i) }

// benchNodeConfig is the node of the benchmarks, empty.
func benchNodeConfig() node.Config {
	cfg := node.DefaultConfig()
	cfg.Name = "bench"
	cfg.Listen = "127.0.0.1:-1"
	cfg.HTTP = node.HTTPOff
	cfg.Prefix = wire.DefaultPrefix
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}
