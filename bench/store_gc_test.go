package bench

import (
	"bytes"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/roostkv/roost/actors/store"
)

// TestStoreGCProfile measures what the garbage collector costs a store of
// many entries, and the process's RSS per entry (issue 15, "a store the
// garbage collector does not fight"). It runs only when ROOST_STOREGC is
// set to the entry count, one count per process so that RSS figures do not
// mix:
//
//	for n in 100000 1000000 5000000; do
//	  ROOST_STOREGC=$n go test -run StoreGCProfile -v -count=1 -timeout 30m ./bench/
//	done
//
// It loads n keys of 16 bytes with 100-byte values into a store whose
// MaxMemory puts them at 89 % of the limit, sets the Go memory limit a node
// would (node.SoftMemoryLimit), and reports RSS per entry after the load
// ("idle"), then runs ROOST_STOREGC_SECONDS (default 10) of 4 goroutines
// doing 90 % gets and 10 % sets of random keys (each set a fresh value, as
// a node's clone of a message is) and reports ops/s, the p50/p99 latency of
// one store call, the GC's share of the CPU time used, GC cycles and the
// p99 and largest stop-the-world pause; then it overwrites n random keys
// and reports RSS per entry "after writes". ROOST_STOREGC_VALUE changes
// the value size. ROOST_STOREGC_GARBAGE (default 1024) is the bytes of
// short-lived garbage each operation allocates besides the store's own, as
// a node's request handling does (message, subject, headers, reply): it is
// what makes the collector run during the load at all.
func TestStoreGCProfile(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ROOST_STOREGC"))
	if n <= 0 {
		t.Skip("set ROOST_STOREGC=<entries> to run")
	}
	vsize := envInt("ROOST_STOREGC_VALUE", 100)
	seconds := envInt("ROOST_STOREGC_SECONDS", 10)
	garbage := envInt("ROOST_STOREGC_GARBAGE", 1024)
	const klen = 16
	debug.FreeOSMemory()
	rss0 := readRSS(t)

	perEntry := int64(klen + vsize + store.EntryOverhead)
	maxMemory := int64(float64(int64(n)*perEntry) / 0.89)
	debug.SetMemoryLimit(maxMemory + maxMemory/8 + 16<<20) // node.SoftMemoryLimit
	defer debug.SetMemoryLimit(math.MaxInt64)
	s, err := store.New(store.Config{MaxMemory: maxMemory})
	if err != nil {
		t.Fatal(err)
	}
	key := func(buf []byte, i int) []byte {
		const hex = "0123456789abcdef"
		buf = append(buf[:0], "key-"...)
		for shift := 44; shift >= 0; shift -= 4 {
			buf = append(buf, hex[i>>shift&0xf])
		}
		return buf
	}
	fill := bytes.Repeat([]byte{'v'}, vsize)
	var kb []byte
	for i := range n {
		kb = key(kb, i)
		v := append([]byte(nil), fill...) // each value its own buffer, as a node's
		if _, err := s.Set(store.SetRequest{Key: string(kb), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	rssIdle := readRSS(t)
	t.Logf("entries=%d value=%d max_memory=%d accounted=%d (%.0f%%) evictions=%d", n, vsize, maxMemory, st.Bytes, 100*float64(st.Bytes)/float64(maxMemory), st.Evictions)
	t.Logf("rss_idle_per_entry=%.0f B (rss %d MiB, baseline %d MiB, %s)", float64(rssIdle-rss0)/float64(st.Keys), rssIdle>>20, rss0>>20, heapSummary())

	// get/set load, under the CPU profiler
	const workers = 4
	profPath := os.Getenv("ROOST_STOREGC_PROFILE")
	if profPath == "" {
		profPath = filepath.Join(t.TempDir(), "cpu.pprof")
	}
	prof, err := os.Create(profPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(prof); err != nil {
		t.Fatal(err)
	}
	m0 := readGCMetrics()
	var ops atomic.Int64
	var stop atomic.Bool
	hists := make([]latHist, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			var kb []byte
			h := &hists[w]
			done := int64(0)
			for !stop.Load() {
				for range 256 {
					kb = key(kb, r.IntN(n))
					t0 := time.Now()
					if r.IntN(10) == 0 {
						v := append([]byte(nil), fill...)
						_, _ = s.Set(store.SetRequest{Key: string(kb), Value: v})
					} else {
						_, _ = s.Get(asString(kb))
					}
					h.add(time.Since(t0))
					g := make([]byte, garbage)
					gcSink.Store(&g)
				}
				done += 256
			}
			ops.Add(done)
		}()
	}
	time.Sleep(time.Duration(seconds) * time.Second)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	m1 := readGCMetrics()
	pprof.StopCPUProfile()
	prof.Close()
	var all latHist
	for i := range hists {
		all.merge(&hists[i])
	}
	cpu := m1.procCPU - m0.procCPU
	t.Logf("load: %.0f ops/s, cpu %.0f ns/op, p50 %v, p99 %v, gc_cpu_share %s (of the profile's samples), cpu %.1fs, gc_cycles %d, pause_p99 %v, pause_max %v",
		float64(ops.Load())/elapsed.Seconds(), cpu*1e9/float64(ops.Load()), all.quantile(0.5), all.quantile(0.99), gcShareOf(t, profPath), cpu,
		m1.cycles-m0.cycles, pauseQuantile(m0.pauses, m1.pauses, 0.99), pauseQuantile(m0.pauses, m1.pauses, 1))

	// write traffic: overwrite n random keys
	r := rand.New(rand.NewPCG(99, 7))
	for range n {
		kb = key(kb, r.IntN(n))
		v := append([]byte(nil), fill...)
		if _, err := s.Set(store.SetRequest{Key: string(kb), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	st = s.Stats()
	rssWrites := readRSS(t)
	t.Logf("rss_after_writes_per_entry=%.0f B (rss %d MiB, keys %d, %s)", float64(rssWrites-rss0)/float64(st.Keys), rssWrites>>20, st.Keys, heapSummary())
	runtime.KeepAlive(s)
}

// heapSummary tells the Go heap's part of the process's memory.
func heapSummary() string {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return fmt.Sprintf("go heap: alloc %d MiB, in use %d MiB, released %d MiB, next GC %d MiB",
		m.HeapAlloc>>20, m.HeapInuse>>20, m.HeapReleased>>20, m.NextGC>>20)
}

// gcSink makes the per-operation garbage escape.
var gcSink atomic.Pointer[[]byte]

// gcShareOf is the share of a CPU profile's samples spent in the garbage
// collector (background mark workers, assists, sweeping, cycle start and
// end), as go tool pprof's focus reports it.
func gcShareOf(t *testing.T, path string) string {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=100000",
		`-focus=^runtime\.(gcBgMarkWorker|gcAssistAlloc|bgsweep|bgscavenge|gcStart|gcMarkDone|gcMarkTermination)$`, path).CombinedOutput()
	if err != nil {
		t.Logf("go tool pprof: %v: %s", err, out)
		return "?"
	}
	m := regexp.MustCompile(`accounting for [^,]+, ([0-9.]+%) of ([^ ]+) total`).FindSubmatch(out)
	if m == nil {
		return "0% (no GC samples)"
	}
	return string(m[1]) + " of " + string(m[2])
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// readRSS returns the process's resident set size in bytes (Linux).
func readRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm:", err)
	}
	f := bytes.Fields(b)
	pages, _ := strconv.ParseInt(string(f[1]), 10, 64)
	return pages * int64(os.Getpagesize())
}

type gcMetrics struct {
	gcCPU, procCPU float64
	cycles         uint64
	pauses         *metrics.Float64Histogram
}

func readGCMetrics() gcMetrics {
	s := []metrics.Sample{
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/cpu/classes/total:cpu-seconds"},
		{Name: "/cpu/classes/idle:cpu-seconds"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/sched/pauses/total/gc:seconds"},
	}
	metrics.Read(s)
	h := s[4].Value.Float64Histogram()
	cp := &metrics.Float64Histogram{Counts: append([]uint64(nil), h.Counts...), Buckets: h.Buckets}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	proc := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return gcMetrics{gcCPU: s[0].Value.Float64(), procCPU: proc, cycles: s[3].Value.Uint64(), pauses: cp}
}

// pauseQuantile is the q-quantile of the pauses between two readings (the
// upper bound of its bucket).
func pauseQuantile(a, b *metrics.Float64Histogram, q float64) time.Duration {
	var total uint64
	for i := range b.Counts {
		total += b.Counts[i] - a.Counts[i]
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i := range b.Counts {
		seen += b.Counts[i] - a.Counts[i]
		if seen >= want {
			up := b.Buckets[i+1]
			if math.IsInf(up, 1) {
				up = b.Buckets[i]
			}
			return time.Duration(up * 1e9)
		}
	}
	return 0
}

// latHist is a log-linear latency histogram: 8 buckets per power of two
// nanoseconds.
type latHist struct{ counts [64 * 8]uint64 }

func (h *latHist) add(d time.Duration) {
	ns := uint64(max(d, 1))
	e := bits.Len64(ns) - 1
	sub := uint64(0)
	if e >= 3 {
		sub = (ns >> (e - 3)) & 7
	}
	h.counts[e*8+int(sub)]++
}

func (h *latHist) merge(o *latHist) {
	for i := range h.counts {
		h.counts[i] += o.counts[i]
	}
}

func (h *latHist) quantile(q float64) time.Duration {
	var total uint64
	for _, c := range h.counts {
		total += c
	}
	want := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= want && c > 0 {
			e, sub := i/8, uint64(i%8)
			if e < 3 {
				return time.Duration(1 << e)
			}
			return time.Duration((8 + sub + 1) << (e - 3)) // the bucket's upper bound
		}
	}
	return 0
}
