package bench

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/nats-io/nats.go"
)

// BenchmarkIncr compares, in one run, Roost's text-API incr with its set and
// with a raw echo responder on the same embedded server: 32 requesters on
// one client connection, over 100k counters (set: 100-byte values). Read
// each figure as a ratio to echo's ns/op of the same run.
func BenchmarkIncr(b *testing.B) {
	n := startBenchNode(b)
	value := make([]byte, benchValueSize)
	startEcho(b, n, "bench.echo.incr", []byte("12345")) // like an incr: empty request, a short number back
	nc := dial(b, n.ClientURL())
	ctx := context.Background()
	b.Run("echo", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(*rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "bench.echo.incr"})
		})
	})
	b.Run("set", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "roost.set." + benchKey(rng.IntN(benchKeys)), Data: value})
		})
	})
	b.Run("incr", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "roost.incr.ctr" + benchKey(rng.IntN(benchKeys))})
		})
	})
}
