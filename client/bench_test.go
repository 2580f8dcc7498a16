package client_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/roostkv/roost/client"
)

// BenchmarkGet measures Get against the fake node (whose handler runs one
// message at a time, as a node's subscription does), by concurrency, with
// batching on and off. Compare ns/op across variants, not against a real node.
func BenchmarkGet(b *testing.B) {
	for _, par := range []int{1, 8, 64} {
		for _, v := range []struct {
			name string
			opts []client.Option
		}{
			{"unbatched", []client.Option{client.WithBatching(false)}},
			{"inflight1", []client.Option{client.WithMaxInFlight(1)}},
			{"inflight4", nil},
			{"inflight16", []client.Option{client.WithMaxInFlight(16)}},
		} {
			b.Run(fmt.Sprintf("goroutines=%d/%s", par, v.name), func(b *testing.B) {
				srv := startServer(b, "")
				node := startNode(b, srv.ClientURL(), "")
				c, err := client.Connect(srv.ClientURL(), v.opts...)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				ctx := context.Background()
				if _, err := c.Set(ctx, "k", make([]byte, 100)); err != nil {
					b.Fatal(err)
				}
				start := node.batches.Load()
				b.SetParallelism(max(1, par/ncpu()))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := c.Get(ctx, "k"); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.ReportMetric(float64(b.N)/float64(node.batches.Load()-start), "ops/msg")
			})
		}
	}
}

func ncpu() int { return runtime.GOMAXPROCS(0) }
