package store

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// BenchmarkHugePagesGet measures what the huge pages (hugepool.go) do for
// a lookup, within one run: two stores of the same keys, one whose shards
// map from the pool and one whose shards map each region apart (as before
// the pool: 4 KiB pages), take turns in slices of 1000 random gets from
// one goroutine, with and without a system call (getpid) before each get,
// as a node's get comes after its NATS work's socket reads and writes.
// It reports the ns per get of each and huge/plain; the system call's own
// time is in both (syscall-alone gives it).
//
//	go test -run '^$' -bench HugePagesGet ./actors/store/
func BenchmarkHugePagesGet(b *testing.B) {
	for _, n := range []int{1 << 17, 1 << 20} {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("bench-key-%08x", i)
		}
		huge, plain := filledStore(b, keys, true), filledStore(b, keys, false)
		for _, sys := range []bool{false, true} {
			b.Run(fmt.Sprintf("keys=%d/syscall=%v", n, sys), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				var buf []byte
				var took [2]time.Duration
				for done := 0; done < b.N; done += 1000 {
					for j, s := range []*Store{huge, plain} {
						start := time.Now()
						for range 1000 {
							if sys {
								syscall.Getpid()
							}
							e, err := s.GetAppend(keys[rng.IntN(n)], buf[:0])
							if err != nil {
								b.Fatal(err)
							}
							buf = e.Value
						}
						took[j] += time.Since(start)
					}
				}
				calls := float64((b.N + 999) / 1000 * 1000)
				b.ReportMetric(float64(took[0].Nanoseconds())/calls, "huge-ns/get")
				b.ReportMetric(float64(took[1].Nanoseconds())/calls, "plain-ns/get")
				b.ReportMetric(float64(took[0])/float64(took[1]), "huge/plain")
			})
		}
	}
	b.Run("syscall-alone", func(b *testing.B) {
		for b.Loop() {
			syscall.Getpid()
		}
	})
}

// filledStore is a store holding every key with a 64-byte value, its
// mapped memory in huge pages from the pool or, with huge false, mapped
// region by region.
func filledStore(b *testing.B, keys []string, huge bool) *Store {
	s, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	if !huge {
		for i := range s.shards {
			s.shards[i].sl.mem.pool = nil
		}
	}
	value := make([]byte, 64)
	for _, k := range keys {
		if _, err := s.Set(SetRequest{Key: k, Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}
