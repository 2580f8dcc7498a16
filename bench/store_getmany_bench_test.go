package bench

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/roostkv/roost/actors/store"
)

// BenchmarkStoreGetMany reads batches of random present keys, as a node's
// batch of gets does: store.GetMany against GetAppend of each key in turn
// into the same buffer, by batch size, over 100k keys of 100 bytes (the
// index, the entries and the values no longer fit in the processor's
// cache). One goroutine; ns/key is wall time per key, cpu-ns/op the
// process's CPU time per batch (steadier on a shared machine).
//
//	go test -run '^$' -bench StoreGetMany -count 3 ./bench/
func BenchmarkStoreGetMany(b *testing.B) {
	const n = 100_000
	s, err := store.New(store.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	names := storeKeys(n)
	value := make([]byte, benchValueSize)
	for _, k := range names {
		if _, err := s.Set(store.SetRequest{Key: k, Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	for _, size := range []int{1, 8, 96} {
		rng := rand.New(rand.NewPCG(uint64(size), 1))
		batch := make([]string, size)
		out := make([]store.Entry, size)
		buf := make([]byte, 0, size*len(value))
		pick := func() {
			for i := range batch {
				batch[i] = names[rng.IntN(n)]
			}
		}
		b.Run(fmt.Sprintf("batch=%d/getmany", size), func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				pick()
				buf = s.GetMany(batch, out, buf[:0])
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/key")
		})
		b.Run(fmt.Sprintf("batch=%d/gets", size), func(b *testing.B) {
			defer reportCPU(b)()
			for b.Loop() {
				pick()
				buf = buf[:0]
				for i, k := range batch {
					out[i], _ = s.GetAppend(k, buf)
					buf = out[i].Value
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/key")
		})
	}
}
