package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// writeMarkdown writes the tables: throughput per axis, then memory.
func writeMarkdown(w io.Writer, o options, results []pointResult, took time.Duration) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s UTC in %s; %d cores, %s, %s; roost serve --max-memory %s; harness: %s per target (rounds of %s, warmup %s), the echo interleaved; redis-benchmark: median of %d runs of ~%gs.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04"), took.Round(time.Second), runtime.NumCPU(), runtime.Version(), redisVersion(o.redisServer),
		o.maxMemory, o.duration, o.round, o.warmup, o.redisRuns, o.redisSeconds)
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, "Load average at the end (other work on the machine): %s.\n\n", strings.Join(strings.Fields(string(load))[:3], " "))
	}
	for _, axis := range []struct{ name, title, col string }{
		{"value", "Value size (32 requesters; 100 000 keys, fewer where keys × value would pass 256 MiB)", "value"},
		{"keys", "Keyspace (100-byte values, 32 requesters)", "keys"},
		{"requesters", "Requesters (100-byte values, 100 000 keys)", "requesters"},
	} {
		rows := pointsOf(results, axis.name)
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(&b, "#### %s\n\n", axis.title)
		fmt.Fprintf(&b, "| %s | keys loaded | op | Roost ops/s | × echo | × Redis | Roost p50 / p99 ms | echo ops/s | Redis ops/s | Redis p50 / p99 ms | redis-benchmark ops/s | redis-benchmark -P16 ops/s | Roost ÷ -P16 |\n", axis.col)
		b.WriteString("|---|---|---|---:|---:|---:|---|---:|---:|---|---:|---:|---:|\n")
		for _, r := range rows {
			label := axisLabel(r.Point, axis.name)
			if r.Err != "" {
				fmt.Fprintf(&b, "| %s | %s | — | failed: %s ||||||||||\n", label, count(r.Point.Keys), oneLine(r.Err))
			}
			for _, op := range []string{opTextGet, opClientGet, opTextSet} {
				pair, ok := r.Runs[op]
				if !ok {
					continue
				}
				test, sameRun := "get", op
				if op == opTextSet {
					test = "set"
				}
				if op == opClientGet {
					sameRun = opTextGet // the client run has no Redis row: the text run's, at the same point
				}
				ro := pair.Roost
				redisOps, redisLat := 0.0, "—"
				if x := r.Runs[sameRun].Redis; x != nil {
					redisOps, redisLat = x.OpsPerSec, ms(x.P50)+" / "+ms(x.P99)
				}
				rb, pipe := r.Redis[test], r.Redis[test+" -P16"]
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %s | %s | %s |\n",
					label, count(r.Point.Keys), op,
					ops(ro.OpsPerSec), ratio(ro.OpsPerSec, pair.Echo.OpsPerSec), ratio(ro.OpsPerSec, redisOps),
					ms(ro.P50), ms(ro.P99), ops(pair.Echo.OpsPerSec), ops(redisOps), redisLat,
					ops(rb.OpsPerSec), ops(pipe.OpsPerSec), ratio(ro.OpsPerSec, pipe.OpsPerSec))
			}
		}
		b.WriteString("\n")
	}

	var mem []pointResult
	for _, r := range results {
		if (r.Point.Axis == "value" || r.Point.Axis == "keys") && r.Err == "" {
			mem = append(mem, r)
		}
	}
	if len(mem) > 0 {
		b.WriteString("#### Memory: resident set per entry\n\n")
		b.WriteString("RSS per entry = (resident set after − before the load) ÷ keys; Roost: VmRSS of the `roost serve` process, Redis: `used_memory_rss`. " +
			"\"idle\" is after loading every key once and waiting; \"after writes\" after the get runs, a second write of every key and the set runs. " +
			"× data = that growth ÷ (key bytes + value bytes). Roost's keys are `sc-bench.<n>` (10–16 bytes), Redis's `key:<12 digits>` (16). " +
			"Below 100k keys the fixed costs of a process (connection buffers of 32–512 requesters, the heap's headroom) swamp the entries: read those rows as an upper bound.\n\n")
		b.WriteString("| keys | value | Roost B/entry idle | after writes | Redis B/entry idle | after writes | Roost ÷ Redis idle / after | Roost × data idle / after | Redis × data idle / after | Roost store's own count B/entry | load keys/s Roost / Redis | rewrite keys/s Roost / Redis (keys) |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---|---|---|---:|---|---|\n")
		for _, r := range mem {
			m, p := r.Mem, r.Point
			n := int64(p.Keys)
			roostData := float64(m.KeyBytes + n*int64(p.ValueSize))
			redisData := float64(n * int64(16+p.ValueSize))
			ri, rw := float64(m.RoostIdle-m.RoostEmpty), float64(m.RoostWritten-m.RoostEmpty)
			di, dw := float64(m.RedisIdle-m.RedisEmpty), float64(m.RedisWritten-m.RedisEmpty)
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s / %s | %.2f / %.2f | %.2f / %.2f | %s | %s / %s | %s / %s (%s) |\n",
				count(p.Keys), sizeName(p.ValueSize),
				perEntry(ri, n), perEntry(rw, n), perEntry(di, n), perEntry(dw, n),
				ratio(ri, di), ratio(rw, dw), ri/roostData, rw/roostData, di/redisData, dw/redisData,
				perEntry(float64(m.StoreBytes), n),
				ops(m.RoostLoad), ops(m.RedisLoad), ops(m.RoostRewrite), ops(m.RedisRewrite), count(m.Rewritten))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pointsOf(results []pointResult, axis string) []pointResult {
	var out []pointResult
	for _, r := range results {
		if r.Point.Axis == axis {
			out = append(out, r)
		}
	}
	return out
}

func axisLabel(p point, axis string) string {
	switch axis {
	case "value":
		return sizeName(p.ValueSize)
	case "keys":
		return count(p.Keys)
	}
	return fmt.Sprint(p.Concurrency)
}

// sizeName prints a byte size as the tables do: 100 B, 4 KiB, 512 KiB.
func sizeName(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// count prints 1000 as 1k, 100000 as 100k, 5000000 as 5M.
func count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000 && n%1_000 == 0:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}

// ops prints ops/s with three significant digits: 61.2k, 5.18k, 412.
func ops(v float64) string {
	switch {
	case v <= 0:
		return "—"
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.3gk", v/1e3)
	}
	return fmt.Sprintf("%.3g", v)
}

func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f", a/b)
}

func perEntry(bytes float64, n int64) string {
	if n == 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", bytes/float64(n))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3g", float64(d)/float64(time.Millisecond)) }

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// redisVersion is "Redis 7.0.15", from redis-server --version.
func redisVersion(exe string) string {
	out, err := exec.Command(exe, "--version").Output()
	if err != nil {
		return "Redis ?"
	}
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return "Redis " + v
		}
	}
	return strings.TrimSpace(string(out))
}
