package client

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkNearCacheHit measures a hit of the near cache alone (no network,
// no Client): the lookup, its checks and the copy of the value.
func BenchmarkNearCacheHit(b *testing.B) {
	h := newNearHarness(&testing.T{}, time.Hour)
	const keys = 200 // all in one shard (one partition): they fit
	names := make([]string, keys)
	for i := range names {
		names[i] = "key" + strconv.Itoa(i)
		h.heads(7, 3)
		h.read(names[i], 5)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := h.n.get(names[i%keys]); !ok {
				b.Error("a miss")
				return
			}
			i++
		}
	})
}
