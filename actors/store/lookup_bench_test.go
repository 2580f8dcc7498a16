package store

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// BenchmarkGetRandom measures one GetAppend of a random present key, one
// goroutine, at 100k, 1M and 5M keys of 16 bytes with 100-byte values (the
// default 16 shards): at the larger sizes the index, the records and the
// arena are far beyond the caches, so a get costs the cache misses its
// lookup waits for in turn. The keys are read in a random order fixed in
// advance (no generator in the loop). Run it under the benchmark lock:
//
//	flock /tmp/roost-bench.lock go test -run '^$' -bench GetRandom -benchtime 2000000x ./actors/store/
func BenchmarkGetRandom(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000, 5_000_000} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			s, names := randomStore(b, n)
			order := make([]uint32, 1<<22)
			rng := rand.New(rand.NewPCG(7, uint64(n)))
			for i := range order {
				order[i] = uint32(rng.IntN(n))
			}
			buf := make([]byte, 0, 128)
			var i int
			for b.Loop() {
				e, err := s.GetAppend(names[order[i&(len(order)-1)]], buf[:0])
				if err != nil || len(e.Value) != 100 {
					b.Fatalf("get: %v, %d bytes", err, len(e.Value))
				}
				i++
			}
			b.StopTimer()
			s.Stop()
			runtime.GC()
		})
	}
}

// randomStore makes a store of n keys of 16 bytes with 100-byte values,
// written in a random order so that neighbours in the slab and the arena
// are not neighbours in any read order.
func randomStore(b *testing.B, n int) (*Store, []string) {
	b.Helper()
	s, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("key:%012d", i)
	}
	value := make([]byte, 100)
	for _, i := range rand.New(rand.NewPCG(3, uint64(n))).Perm(n) {
		if _, err := s.Set(SetRequest{Key: names[i], Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	return s, names
}
