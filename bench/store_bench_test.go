package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/roostkv/roost/actors/store"
)

// Store benchmarks. Run with the machine's cores as goroutines, e.g.
//
//	go test -run xxx -bench Store -benchtime 1s -cpu 2 ./bench/
//
// The -2 suffix on a name is GOMAXPROCS; RunParallel runs that many
// goroutines, so "BenchmarkStoreGet/keys=1024-2" is the store get with 2
// goroutines, and ns/op is wall time per operation across both.

// storeKeys returns n distinct 18-byte keys: the key of i is storeKey(i).
func storeKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = string(storeKey(nil, i))
	}
	return keys
}

// storeKey appends the key of i ("bench-key-" and 8 hex digits) to buf.
// Benchmarks build the key they look up in a reused buffer rather than read
// it from a big slice, so that the figures do not include cache misses of
// the benchmark's own key table: a server has the key of a request at hand.
func storeKey(buf []byte, i int) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf[:0], "bench-key-"...)
	for shift := 28; shift >= 0; shift -= 4 {
		buf = append(buf, hex[i>>shift&0xf])
	}
	return buf
}

// asString views buf as a string without copying; the store does not keep
// the key of a Get, and clones the key of a Set that inserts.
func asString(buf []byte) string { return unsafe.String(unsafe.SliceData(buf), len(buf)) }

// storeFilled returns a store holding every key with a 64-byte value.
func storeFilled(b *testing.B, cfg store.Config, keys []string) *store.Store {
	b.Helper()
	s, err := store.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)
	value := make([]byte, 64)
	for _, k := range keys {
		if _, err := s.Set(store.SetRequest{Key: k, Value: value}); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// storeSeeds gives each RunParallel goroutine its own random stream.
type storeSeeds struct{ n atomic.Uint64 }

func (s *storeSeeds) rng() *rand.Rand { return rand.New(rand.NewPCG(s.n.Add(1), 0x5eed)) }

// BenchmarkStoreGet reads random present keys through the direct, locked path.
func BenchmarkStoreGet(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 17, 1 << 20} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			keys := storeKeys(n)
			s := storeFilled(b, store.Config{}, keys)
			var sd storeSeeds
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := sd.rng()
				var buf []byte
				for pb.Next() {
					buf = storeKey(buf, rng.IntN(n))
					if _, err := s.Get(asString(buf)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkStoreSet writes random keys: overwrites of present keys, and
// inserts into a full store that must evict.
func BenchmarkStoreSet(b *testing.B) {
	const n = 1 << 17
	keys := storeKeys(n)
	value := make([]byte, 64)
	b.Run("overwrite", func(b *testing.B) {
		s := storeFilled(b, store.Config{}, keys)
		var sd storeSeeds
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			rng := sd.rng()
			var buf []byte
			for pb.Next() {
				buf = storeKey(buf, rng.IntN(n))
				if _, err := s.Set(store.SetRequest{Key: asString(buf), Value: value}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("evicting", func(b *testing.B) {
		// Room for a quarter of the keys: most sets insert and evict.
		perEntry := int64(len(keys[0]) + len(value) + store.EntryOverhead)
		s := storeFilled(b, store.Config{MaxMemory: n / 4 * perEntry, Shards: 16}, keys)
		var sd storeSeeds
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			rng := sd.rng()
			var buf []byte
			for pb.Next() {
				buf = storeKey(buf, rng.IntN(n))
				if _, err := s.Set(store.SetRequest{Key: asString(buf), Value: value}); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		if st := s.Stats(); st.Bytes > st.MaxBytes || st.Evictions == 0 {
			b.Fatalf("stats %+v", st)
		}
	})
}

// BenchmarkStoreGetPath compares a get through the store's actor mailbox
// (ask and wait: a message with a reply channel, answered by the loop
// goroutine) with the direct get through the shard lock, from one goroutine
// and from GOMAXPROCS goroutines. It is the measurement behind reading
// through the lock (DESIGN: the mailbox may be bypassed if it costs > 5 %).
func BenchmarkStoreGetPath(b *testing.B) {
	const n = 1 << 10
	keys := storeKeys(n)
	ctx := context.Background()
	s := storeFilled(b, store.Config{}, keys)
	s.Start()
	paths := []struct {
		name string
		get  func(key string) (store.Entry, error)
	}{
		{"direct", s.Get},
		{"mailbox", func(key string) (store.Entry, error) { return s.AskGet(ctx, key) }},
	}
	for _, p := range paths {
		b.Run(p.name+"/serial", func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf = storeKey(buf, rng.IntN(n))
				if _, err := p.get(asString(buf)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(p.name+"/parallel", func(b *testing.B) {
			var sd storeSeeds
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				rng := sd.rng()
				var buf []byte
				for pb.Next() {
					buf = storeKey(buf, rng.IntN(n))
					if _, err := p.get(asString(buf)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
