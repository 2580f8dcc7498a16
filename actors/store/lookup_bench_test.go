package store

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"
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
			s := randomStore(b, n)
			order := make([]uint32, 1<<22)
			rng := rand.New(rand.NewPCG(7, uint64(n)))
			for i := range order {
				order[i] = uint32(rng.IntN(n))
			}
			key, buf := make([]byte, 0, 16), make([]byte, 0, 128)
			var i int
			for b.Loop() {
				// The key is written into a buffer, as a server has it in the
				// request: no table of keys whose misses would add to the get's.
				key = keyName(key[:0], int(order[i&(len(order)-1)]))
				e, err := s.GetAppend(unsafe.String(unsafe.SliceData(key), len(key)), buf[:0])
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

// keyName appends key number i, "key:" and 12 decimal digits, to buf.
func keyName(buf []byte, i int) []byte {
	buf = append(buf, "key:000000000000"...)
	for p := len(buf) - 1; i > 0; p, i = p-1, i/10 {
		buf[p] = byte('0' + i%10)
	}
	return buf
}

// randomStore makes a store of n keys of 16 bytes (keyName) with 100-byte
// values, written in a random order so that neighbours in the slab and the
// arena are not neighbours in any read order.
func randomStore(b *testing.B, n int) *Store {
	b.Helper()
	s, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	for _, i := range rand.New(rand.NewPCG(3, uint64(n))).Perm(n) {
		if _, err := s.Set(SetRequest{Key: string(keyName(nil, i)), Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}
