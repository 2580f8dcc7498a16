// Command scaling measures how Roost scales along three axes, one at a time
// from a base point (100-byte values, 100 000 keys, 32 requesters): value
// size (100 B, 4 KiB, 64 KiB, 512 KiB), keyspace (1k, 100k, 1M, 5M) and
// requesters (1, 8, 32, 128, 512), beside a fair NATS echo and Redis 7 at the
// same points, and prints the markdown tables of BENCHMARKS.md's "Scaling
// tables (issue 15)":
//
//	go run ./bench/scaling > /tmp/scaling.md
//
// At each point it starts, on loopback and free ports, a `roost serve`
// process (built from ./cmd/roost unless --roost names one), the echo (this
// program's `echo` subcommand: an embedded nats-server and a responder on an
// in-process connection, shaped like a node) and redis-server (Debian's
// redis-server and redis-tools packages), and stops all three before the
// next point; every child also gets SIGTERM if this process dies. Then:
//
//  1. it loads the keyspace into Roost (the Go client's MSet) and Redis
//     (pipelined SETs of redis-benchmark's keys), waits, and reads the
//     resident set of each (Roost: VmRSS of /proc/PID/status; Redis: INFO
//     memory used_memory_rss), also before the load;
//  2. it measures Roost's text-API get and the Go client's (batching) get
//     with bench/harness, the echo interleaved round by round in the same
//     run, and Redis's get with redis-benchmark, plain and with -P 16;
//  3. it overwrites every key once more in both (Roost for at most
//     --rewrite-budget, Redis as many keys), measures the sets the same
//     way, and reads the resident sets again ("after writes").
//
// Roost's and the echo's ops/s are the median of their rounds; Redis's the
// median of --redis-runs redis-benchmark runs. The machine this runs on is
// what it is: ratios within one point are what count.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roostkv/roost/bench/harness"
	"github.com/roostkv/roost/client"
)

// keyPrefix starts Roost's keys: with up to 7 digits after it, a key of the
// 5M keyspace is 16 bytes, as redis-benchmark's key:<12 digits> is.
const keyPrefix = "sc-bench."

type options struct {
	roost, redisServer, redisBench string
	out, jsonOut                   string
	duration, round, warmup        time.Duration
	redisSeconds                   float64
	redisRuns                      int
	maxMemory                      string
	big                            int
	axes                           string
	settle                         time.Duration
	rewriteBudget                  time.Duration
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "echo" {
		size, err := strconv.Atoi(os.Args[2])
		if err == nil {
			err = serveEcho(size)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "scaling echo:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.roost, "roost", "", "roost executable to start as `roost serve`; empty = go build ./cmd/roost into a temporary directory")
	flag.StringVar(&o.redisServer, "redis-server", "redis-server", "redis-server executable")
	flag.StringVar(&o.redisBench, "redis-benchmark", "redis-benchmark", "redis-benchmark executable")
	flag.StringVar(&o.out, "out", "", "write the markdown tables here; empty = stdout")
	flag.StringVar(&o.jsonOut, "json", "", "also write every figure measured as JSON here")
	flag.DurationVar(&o.duration, "duration", 4*time.Second, "measured time per target and run of bench/harness (the echo and Roost take turns)")
	flag.DurationVar(&o.round, "round", time.Second, "one round of bench/harness; ops/s is the median round")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warmup per target and run")
	flag.Float64Var(&o.redisSeconds, "redis-seconds", 2, "aim of each redis-benchmark run, in seconds (its -n is sized from a short probe)")
	flag.IntVar(&o.redisRuns, "redis-runs", 3, "redis-benchmark runs per test and point; the median is reported")
	flag.StringVar(&o.maxMemory, "max-memory", "1GiB", "--max-memory of roost serve (its default); the 5M keyspace of 100-byte values fills most of it")
	flag.IntVar(&o.big, "big", 5_000_000, "the largest keyspace of the keyspace axis; 0 = leave it out")
	flag.StringVar(&o.axes, "axes", "value,keys,requesters", "which axes to run, comma-separated")
	flag.DurationVar(&o.settle, "settle", 3*time.Second, "wait after loading or writing before reading the resident sets")
	flag.DurationVar(&o.rewriteBudget, "rewrite-budget", time.Minute, "at most this long for the second write of every key into Roost (Redis then rewrites as many): at millions of keys near --max-memory it is slow")
	quick := flag.Bool("quick", false, "a smoke run: 1 s per target, one redis run, no 5M keyspace")
	flag.Parse()
	if *quick {
		o.duration, o.round, o.warmup, o.redisSeconds, o.redisRuns, o.big, o.settle = time.Second, 500*time.Millisecond, 200*time.Millisecond, 0.5, 1, 0, time.Second
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "scaling:", err)
		os.Exit(1)
	}
}

// point is one place on an axis.
type point struct {
	Axis        string `json:"axis"` // "value", "keys" or "requesters"
	ValueSize   int    `json:"value_size"`
	Keys        int    `json:"keys"`
	Concurrency int    `json:"concurrency"`
}

// Base point and axes.
const (
	baseValue = 100
	baseKeys  = 100_000
	baseConc  = 32
	// dataCap bounds the value axis's data (keys × value size): 100 000
	// values of 64 KiB would be 6.4 GB, past the node's default
	// --max-memory; the large values get fewer keys instead.
	dataCap = 256 << 20
)

func points(axes string, big int) []point {
	var ps []point
	for _, axis := range strings.Split(axes, ",") {
		switch strings.TrimSpace(axis) {
		case "value":
			for _, size := range []int{100, 4 << 10, 64 << 10, 512 << 10} {
				ps = append(ps, point{"value", size, min(baseKeys, dataCap/size), baseConc})
			}
		case "keys":
			for _, keys := range []int{1_000, 100_000, 1_000_000, big} {
				if keys > 0 {
					ps = append(ps, point{"keys", baseValue, keys, baseConc})
				}
			}
		case "requesters":
			for _, c := range []int{1, 8, 32, 128, 512} {
				ps = append(ps, point{"requesters", baseValue, baseKeys, c})
			}
		}
	}
	return ps
}

// The measurements of one point. Row names of Runs.
const (
	opTextGet   = "text get"
	opClientGet = "client get"
	opTextSet   = "text set"
)

type pointResult struct {
	Point   point                  `json:"point"`
	Runs    map[string]harnessPair `json:"runs"`  // by opTextGet, ...
	Redis   map[string]redisResult `json:"redis"` // by "get", "set", "get -P16", "set -P16"
	Mem     memResult              `json:"memory"`
	Seconds float64                `json:"seconds"`
	Err     string                 `json:"error,omitempty"`
}

type harnessPair struct {
	Roost harness.Row  `json:"roost"`
	Echo  harness.Row  `json:"echo"`
	Redis *harness.Row `json:"redis,omitempty"` // Redis through the harness, in the same rounds
}

// nameRedis is Redis's row in a harness run.
const nameRedis = "redis"

type memResult struct {
	RoostEmpty, RoostIdle, RoostWritten int64 // VmRSS, bytes
	RedisEmpty, RedisIdle, RedisWritten int64 // used_memory_rss, bytes
	RedisKeys                           int64
	KeyBytes                            int64 // sum of Roost's key lengths
	StoreKeys, StoreBytes, StoreMax     int64 // Roost's store stats after the load
	Evictions                           int64 // after all the writes

	// Load and rewrite rates, keys/s: the first write of every key, and the
	// second (bounded by --rewrite-budget: Rewritten keys, the first ones).
	RoostLoad, RoostRewrite, RedisLoad, RedisRewrite float64
	Rewritten                                        int
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	for _, exe := range []*string{&o.redisServer, &o.redisBench} {
		p, err := exec.LookPath(*exe)
		if err != nil {
			return fmt.Errorf("%s not found (apt-get install -y redis-server redis-tools): %w", *exe, err)
		}
		*exe = p
	}
	if o.roost == "" {
		dir, err := os.MkdirTemp("", "scaling-roost-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.roost = filepath.Join(dir, "roost")
		progress("building %s from ./cmd/roost", o.roost)
		build := exec.CommandContext(ctx, "go", "build", "-o", o.roost, "./cmd/roost")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/roost (run from the module's root): %w", err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var results []pointResult
	for _, p := range points(o.axes, o.big) {
		progress("point %s: %s values, %d keys, %d requesters", p.Axis, sizeName(p.ValueSize), p.Keys, p.Concurrency)
		t0 := time.Now()
		res, err := measurePoint(ctx, o, self, p)
		res.Seconds = time.Since(t0).Seconds()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			res.Err = err.Error()
			progress("point failed: %v", err)
		}
		results = append(results, res)
	}
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	out := os.Stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	return writeMarkdown(out, o, results, time.Since(start))
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s scaling: %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// measurePoint starts the three servers, measures p, and stops them.
func measurePoint(ctx context.Context, o options, self string, p point) (res pointResult, err error) {
	res = pointResult{Point: p, Runs: map[string]harnessPair{}, Redis: map[string]redisResult{}}
	roost, err := startChild("roost serve", o.roost, []string{"serve", "--name", "scaling", "--listen", "127.0.0.1:-1",
		"--http", "off", "--log-level", "warn", "--max-memory", o.maxMemory}, roostEnv())
	if err != nil {
		return res, err
	}
	defer roost.stop()
	roostURL, err := roost.waitLine(ctx, "NATS ")
	if err != nil {
		return res, err
	}
	echo, err := startChild("echo", self, []string{"echo", strconv.Itoa(p.ValueSize)}, nil)
	if err != nil {
		return res, err
	}
	defer echo.stop()
	echoURL, err := echo.waitLine(ctx, "NATS ")
	if err != nil {
		return res, err
	}
	redis, err := startRedis(ctx, o.redisServer)
	if err != nil {
		return res, err
	}
	defer redis.stop()

	nc, err := nats.Connect(roostURL, nats.Name("scaling loader"), nats.Timeout(10*time.Second))
	if err != nil {
		return res, err
	}
	defer nc.Close()
	c, err := client.New(nc, client.WithTimeout(time.Minute), client.WithBatching(false))
	if err != nil {
		return res, err
	}
	defer c.Close()

	m := &res.Mem
	if m.RoostEmpty, err = rssBytes(roost.pid()); err != nil {
		return res, err
	}
	if m.RedisEmpty, _, _, err = redis.memory(); err != nil {
		return res, err
	}
	value := fillValue(p.ValueSize)
	keys := make([]string, p.Keys)
	for i := range keys {
		keys[i] = keyPrefix + strconv.Itoa(i)
		m.KeyBytes += int64(len(keys[i]))
	}
	progress("  loading %d keys into roost and redis", p.Keys)
	t0 := time.Now()
	if _, err := loadRoost(ctx, c, keys, value, 0); err != nil {
		return res, err
	}
	m.RoostLoad = float64(p.Keys) / time.Since(t0).Seconds()
	t0 = time.Now()
	if err := redis.load(ctx, p.Keys, p.ValueSize); err != nil {
		return res, err
	}
	m.RedisLoad = float64(p.Keys) / time.Since(t0).Seconds()
	st, err := storeStats(ctx, c)
	if err != nil {
		return res, err
	}
	m.StoreKeys, m.StoreBytes, m.StoreMax = st.Keys, st.Bytes, st.MaxBytes
	if st.Keys != int64(p.Keys) || st.Evictions > 0 {
		return res, fmt.Errorf("roost holds %d of the %d keys loaded (%d evicted, %d of %d bytes): raise --max-memory", st.Keys, p.Keys, st.Evictions, st.Bytes, st.MaxBytes)
	}
	if err := sleep(ctx, o.settle); err != nil {
		return res, err
	}
	if m.RoostIdle, err = rssBytes(roost.pid()); err != nil {
		return res, err
	}
	if m.RedisIdle, _, m.RedisKeys, err = redis.memory(); err != nil {
		return res, err
	}

	cfg := harness.DefaultConfig()
	cfg.Server, cfg.Keys, cfg.ValueSize, cfg.Concurrency = roostURL, p.Keys, p.ValueSize, p.Concurrency
	cfg.Duration, cfg.Round, cfg.Warmup, cfg.Timeout = o.duration, o.round, o.warmup, 10*time.Second
	cfg.Compare, cfg.EchoServer, cfg.EchoBase = true, echoURL, echoBase
	cfg.KeyPrefix, cfg.Keep, cfg.Preloaded = keyPrefix, true, true
	withRedis := []harness.ExtraTarget{{Name: nameRedis, Open: func() (harness.Target, error) {
		return openRedisTarget(redis.addr, p.Concurrency)
	}}}
	measure := func(name, workload, path string, extra []harness.ExtraTarget) error {
		progress("  roost %s (and the echo%s)", name, map[bool]string{true: ", redis"}[extra != nil])
		cfg.Workload, cfg.Path, cfg.Extra = workload, path, extra
		rep, err := harness.Run(ctx, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		r, e := rep.Row(harness.NameRoost), rep.Row(harness.NameEcho)
		if r == nil || e == nil {
			return fmt.Errorf("%s: no roost or echo row", name)
		}
		if r.Errors > 0 {
			return fmt.Errorf("%s: %d of Roost's requests failed: %s", name, r.Errors, r.FirstErr)
		}
		pair := harnessPair{Roost: *r, Echo: *e}
		if x := rep.Row(nameRedis); x != nil {
			if x.Errors > 0 {
				return fmt.Errorf("%s: %d of Redis's requests failed: %s", name, x.Errors, x.FirstErr)
			}
			pair.Redis = x
		}
		res.Runs[name] = pair
		return nil
	}
	redisTests := func(test string) error {
		for _, pipe := range []int{1, 16} {
			name := test
			if pipe > 1 {
				name = fmt.Sprintf("%s -P%d", test, pipe)
			}
			progress("  redis %s", name)
			r, err := redisMedian(ctx, o, redis.port, test, p, pipe)
			if err != nil {
				return err
			}
			res.Redis[name] = r
		}
		return nil
	}

	if err := measure(opTextGet, harness.WorkloadGet, harness.PathText, withRedis); err != nil {
		return res, err
	}
	if err := measure(opClientGet, harness.WorkloadGet, harness.PathClient, nil); err != nil {
		return res, err
	}
	if err := redisTests("get"); err != nil {
		return res, err
	}
	progress("  overwriting every key in roost (for at most %s) and as many in redis", o.rewriteBudget)
	t0 = time.Now()
	if m.Rewritten, err = loadRoost(ctx, c, keys, value, o.rewriteBudget); err != nil {
		return res, err
	}
	m.RoostRewrite = float64(m.Rewritten) / time.Since(t0).Seconds()
	t0 = time.Now()
	if err := redis.load(ctx, m.Rewritten, p.ValueSize); err != nil {
		return res, err
	}
	m.RedisRewrite = float64(m.Rewritten) / time.Since(t0).Seconds()
	if err := measure(opTextSet, harness.WorkloadSet, harness.PathText, withRedis); err != nil {
		return res, err
	}
	if err := redisTests("set"); err != nil {
		return res, err
	}
	if err := sleep(ctx, o.settle); err != nil {
		return res, err
	}
	if m.RoostWritten, err = rssBytes(roost.pid()); err != nil {
		return res, err
	}
	if m.RedisWritten, _, _, err = redis.memory(); err != nil {
		return res, err
	}
	if st, err = storeStats(ctx, c); err != nil {
		return res, err
	}
	m.Evictions = st.Evictions
	return res, nil
}

// roostEnv is the environment of roost serve: this one's, less ROOST_*
// settings, so that it runs with serve's defaults and the flags given.
func roostEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROOST_") {
			env = append(env, kv)
		}
	}
	return env
}

// loadRoost writes the keys with value, a chunk of MSet at a time, in
// order, and returns how many it wrote: all, or with a budget > 0 those it
// wrote before the budget ran out.
func loadRoost(ctx context.Context, c *client.Client, keys []string, value []byte, budget time.Duration) (int, error) {
	start := time.Now()
	chunk := max(16, min(20_000, (64<<20)/len(value)))
	items := make([]client.SetItem, 0, chunk)
	lo := 0
	for ; lo < len(keys); lo += chunk {
		if budget > 0 && time.Since(start) > budget {
			return lo, nil
		}
		items = items[:0]
		for _, k := range keys[lo:min(lo+chunk, len(keys))] {
			items = append(items, client.SetItem{Key: k, Value: value})
		}
		if _, err := c.MSet(ctx, items...); err != nil {
			return lo, fmt.Errorf("load roost: %w", err)
		}
	}
	return len(keys), nil
}

type storeStatus struct {
	Keys      int64 `json:"keys"`
	Bytes     int64 `json:"bytes"`
	MaxBytes  int64 `json:"max_bytes"`
	Evictions int64 `json:"evictions"`
}

func storeStats(ctx context.Context, c *client.Client) (storeStatus, error) {
	raw, err := c.StatusOf(ctx, "scaling")
	if err != nil {
		return storeStatus{}, fmt.Errorf("roost status: %w", err)
	}
	var s struct {
		Store storeStatus `json:"store"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return storeStatus{}, fmt.Errorf("roost status: %w", err)
	}
	return s.Store, nil
}

// redisMedian runs redis-benchmark --redis-runs times, each sized from a
// short probe to last about --redis-seconds, and returns the median by
// ops/s.
func redisMedian(ctx context.Context, o options, port int, test string, p point, pipe int) (redisResult, error) {
	// At least one request per client and pipeline slot: fewer would leave
	// clients idle. A slow test (large values) gets a short probe.
	probeN := max(p.Concurrency*pipe, min(20_000, (16<<20)/p.ValueSize))
	probe, err := redisBench(ctx, o.redisBench, port, test, p.ValueSize, p.Keys, p.Concurrency, pipe, probeN)
	if err != nil {
		return redisResult{}, err
	}
	n := max(p.Concurrency*pipe, int(probe.OpsPerSec*o.redisSeconds))
	var runs []redisResult
	for range max(1, o.redisRuns) {
		r, err := redisBench(ctx, o.redisBench, port, test, p.ValueSize, p.Keys, p.Concurrency, pipe, n)
		if err != nil {
			return redisResult{}, err
		}
		runs = append(runs, r)
	}
	slices.SortFunc(runs, func(a, b redisResult) int {
		switch {
		case a.OpsPerSec < b.OpsPerSec:
			return -1
		case a.OpsPerSec > b.OpsPerSec:
			return 1
		}
		return 0
	})
	return runs[len(runs)/2], nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func fillValue(n int) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}
