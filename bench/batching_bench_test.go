package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/client"
)

// BenchmarkBatching compares, in one run, gets through the Go client with
// batching on against the raw echo, by number of concurrent callers (issue
// #15: ≥ 4 × echo at 128 callers, no worse than before at 1 and 32). The
// client has a connection of its own; ops/msg is the gets per batch message
// it sent.
//
//	go test -run '^$' -bench 'Batching' -benchtime 2s -count 3 ./bench/
func BenchmarkBatching(b *testing.B) {
	n := startBenchNode(b)
	startEcho(b, n, "bench.echo.get", make([]byte, benchValueSize))
	nc := dial(b, n.ClientURL())
	ctx := context.Background()
	for _, callers := range []int{1, 32, 128, 512} {
		b.Run(fmt.Sprintf("callers=%d/echo-get", callers), func(b *testing.B) {
			defer reportCPU(b)()
			runConcurrent(b, callers, func(*rand.Rand) error {
				return request(ctx, nc, &nats.Msg{Subject: "bench.echo.get"})
			})
		})
		b.Run(fmt.Sprintf("callers=%d/client-get", callers), func(b *testing.B) {
			cnc := dial(b, n.ClientURL())
			c, err := client.New(cnc)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			before := cnc.Stats().OutMsgs
			defer reportCPU(b)()
			runConcurrent(b, callers, func(rng *rand.Rand) error {
				_, err := c.Get(ctx, benchKey(rng.IntN(benchKeys)))
				return err
			})
			if msgs := cnc.Stats().OutMsgs - before; msgs > 0 {
				b.ReportMetric(float64(b.N)/float64(msgs), "ops/msg")
			}
		})
	}
	// The ceiling of 128 gets outstanding, with no client library: as one
	// batch, or split into smaller batches in flight at once.
	for _, s := range []struct{ size, senders int }{{128, 1}, {64, 2}, {32, 4}, {16, 8}} {
		run := rawBatches(nc, s.size, s.senders)
		b.Run(fmt.Sprintf("callers=128/raw-batch%d-x%d", s.size, s.senders), func(b *testing.B) {
			defer reportCPU(b)()
			run(b)
		})
	}
}

// reportCPU returns a function that reports the CPU time this process
// (node, server and client together) spent per operation since reportCPU
// was called: on a machine shared with other work, a steadier measure than
// operations per second.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
