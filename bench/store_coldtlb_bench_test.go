package bench

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/roostkv/roost/actors/store"
)

// BenchmarkStoreGetAfterSyscall is BenchmarkStoreGet from one goroutine
// with a system call (getpid) before each get, as a node's get comes after
// the NATS work's socket reads and writes: on a kernel with page-table
// isolation and no PCID, every entry to the kernel flushes the TLB, so the
// lookup pays a page walk for each page it touches. "syscall" is the
// system call alone, to subtract.
func BenchmarkStoreGetAfterSyscall(b *testing.B) {
	for _, n := range []int{1 << 10, 1 << 17, 1 << 20} {
		keys := storeKeys(n)
		s := storeFilled(b, store.Config{}, keys)
		for _, sys := range []bool{false, true} {
			b.Run(fmt.Sprintf("keys=%d/syscall=%v", n, sys), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				var buf, val []byte
				for b.Loop() {
					if sys {
						syscall.Getpid()
					}
					buf = storeKey(buf, rng.IntN(n))
					e, err := s.GetAppend(asString(buf), val[:0])
					if err != nil {
						b.Fatal(err)
					}
					val = e.Value
				}
			})
		}
	}
	b.Run("syscall-alone", func(b *testing.B) {
		for b.Loop() {
			syscall.Getpid()
		}
	})
}
