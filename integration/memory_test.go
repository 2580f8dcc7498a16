package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/node"
)

// TestMaxMemoryBoundsHeap writes 320 MiB (five times the limit) through the NATS API into a node with
// --max-memory 64MiB, as `roost serve` runs it (with its soft memory limit),
// and checks that the Go heap never grows past 1.25 × the limit + 32 MiB and
// that evictions are counted. The store keeps most of its memory outside the
// Go heap (docs/store.md, "Memory layout"), so the same bound also holds the
// growth of the process's resident memory, sampled alongside.
func TestMaxMemoryBoundsHeap(t *testing.T) {
	// Not parallel: it measures the process's heap and sets its memory limit.
	if testing.Short() {
		t.Skip("writes 320 MiB")
	}
	const (
		maxMemory = 64 << 20
		total     = 320 << 20 // five times the limit: without eviction the heap passes the bound three times over
		writers   = 16
	)
	bound := uint64(maxMemory + maxMemory/4 + 32<<20)
	old := debug.SetMemoryLimit(node.SoftMemoryLimit(maxMemory))
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	runtime.GC()
	rss0, ok := residentBytes()
	if !ok {
		t.Skip("no /proc/self/statm to read the resident set from")
	}

	n := startNode(t, func(c *node.Config) { c.MaxMemory = maxMemory })
	nc := connect(t, n)

	// Sample the heap while writing.
	var peak, peakRSS atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			if r, _ := residentBytes(); r > rss0 && uint64(r-rss0) > peakRSS.Load() {
				peakRSS.Store(uint64(r - rss0))
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	var written atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			buf := make([]byte, 64<<10)
			for i := 0; written.Load() < total; i++ {
				size := 1<<10 + rng.IntN(63<<10) // 1..64 KiB, 32 KiB on average
				msg := nats.NewMsg(fmt.Sprintf("roost.set.w%d.%d", w, i))
				msg.Data = buf[:size]
				resp, err := nc.RequestMsg(msg, 10*time.Second)
				if err != nil {
					errs <- err
					return
				}
				if c := resp.Header.Get("Nats-Service-Error-Code"); c != "" {
					errs <- fmt.Errorf("set answered %s: %s", c, resp.Header.Get("Nats-Service-Error"))
					return
				}
				written.Add(int64(size))
			}
		})
	}
	wg.Wait()
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	s := n.StoreStats()
	t.Logf("wrote %d MiB; peak heap %d MiB, peak resident growth %d MiB (bound %d MiB); store holds %d keys, %d MiB; %d evictions",
		written.Load()>>20, peak.Load()>>20, peakRSS.Load()>>20, bound>>20, s.Keys, s.Bytes>>20, s.Evictions)
	if p := peak.Load(); p > bound {
		t.Fatalf("peak heap %d MiB over the bound %d MiB", p>>20, bound>>20)
	}
	if p := peakRSS.Load(); p > bound {
		t.Fatalf("peak resident growth %d MiB over the bound %d MiB", p>>20, bound>>20)
	}
	if s.Bytes > maxMemory {
		t.Fatalf("store accounts %d bytes, over --max-memory %d", s.Bytes, maxMemory)
	}
	if s.Evictions == 0 {
		t.Fatal("320 MiB into 64 MiB counted no evictions")
	}
	if min := int64(maxMemory / 2); s.Bytes < min {
		t.Fatalf("store holds only %d bytes of a %d limit: evicting far too much", s.Bytes, maxMemory)
	}
}

// residentBytes is the test process's resident set size (Linux only).
func residentBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()), err == nil
}
