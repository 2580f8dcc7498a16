package integration

// Fault tests with real `roost serve` processes: repeated kill -9 and
// SIGTERM of random nodes, and restarts, under ack=all load, checked by a
// history of every write and read (history_test.go). The schedule is
// seeded; see faultEnv.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// faultEnv is what the environment says about the fault tests:
//
//	ROOST_FAULT_SEED      the seed of the first run (default: the clock); a
//	                      failing run's seed replays its schedule and workload
//	ROOST_FAULT_RUNS      runs per test, seeds SEED, SEED+1, ... (default 1)
//	ROOST_FAULT_DURATION  how long each run injects faults (default per test)
type faultEnv struct {
	seed     uint64
	runs     int
	duration time.Duration
}

// readFaultEnv reads faultEnv, with def as the default duration.
func readFaultEnv(t *testing.T, def time.Duration) faultEnv {
	t.Helper()
	e := faultEnv{seed: uint64(time.Now().UnixNano()) % 1e9, runs: 1, duration: def}
	if v := os.Getenv("ROOST_FAULT_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ROOST_FAULT_SEED=%q: %v", v, err)
		}
		e.seed = s
	}
	if v := os.Getenv("ROOST_FAULT_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ROOST_FAULT_RUNS=%q: want a count of 1 or more", v)
		}
		e.runs = n
	}
	if v := os.Getenv("ROOST_FAULT_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			t.Fatalf("ROOST_FAULT_DURATION=%q: want a positive Go duration", v)
		}
		e.duration = d
	}
	return e
}

// eachSeed runs fn as one subtest per run, named by its seed, which it
// also logs with the command that replays it.
func (e faultEnv) eachSeed(t *testing.T, fn func(t *testing.T, seed uint64)) {
	for i := range e.runs {
		seed := e.seed + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("seed %d, faults for %s; replay: ROOST_FAULT_SEED=%d go test ./integration/ -run '%s'",
				seed, e.duration, seed, t.Name())
			fn(t, seed)
		})
	}
}

// faultSchedule kills or stops a random node, restarts it, and repeats,
// for a duration; at most one node is down at a time, so that with R=2
// every partition keeps an owner that survives.
type faultSchedule struct {
	up       [2]time.Duration // how long all nodes run between faults: uniform in [lo, hi)
	down     [2]time.Duration // how long the victim stays down
	graceful float64          // the share of faults that are SIGTERM instead of kill -9
}

// run injects faults into c for d, drawn from rng, then returns with every
// node serving. It returns how many kills and stops it did.
//
// The up time counts from the restarted process's launch, not from when it
// serves: its peers adopt a table with it about 0.4 s after the launch, and
// it computes its own about a second later, so the next fault may fall in
// between (the window of issue 11), or hit the restarted node itself
// before it serves.
func (s faultSchedule) run(c *procCluster, rng *rand.Rand, d time.Duration) (kills, stops int) {
	c.t.Helper()
	between := func(r [2]time.Duration) time.Duration {
		return r[0] + time.Duration(rng.Int64N(int64(r[1]-r[0])))
	}
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		<-time.After(between(s.up)) // the schedule itself, not a settle wait
		victim := c.names[rng.IntN(len(c.names))]
		if rng.Float64() < s.graceful {
			c.awaitServing(victim) // SIGTERM before its handler would be a kill
			c.stop(victim)
			stops++
		} else {
			c.kill(victim) // perhaps while it still starts
			kills++
		}
		<-time.After(between(s.down))
		c.launch(victim)
	}
	c.waitFormed(20 * time.Second)
	return kills, stops
}

// TestKillRestartUnderLoad: three processes, R=2, writers doing ack=all
// sets over a few hundred keys and readers through every node, while a
// random node is killed (kill -9) or stopped (SIGTERM) every few seconds
// and restarted 2-3 s later. Then every key is read back through every
// node. Nothing acked may be lost; no read may go below what was acked
// before it began. Without --data-dir, and with it (restarts load the
// snapshot of the last graceful stop, or an older one after a kill).
func TestKillRestartUnderLoad(t *testing.T) {
	// Not parallel: kill -9 and restarts on a schedule, timed against heartbeats.
	if testing.Short() {
		t.Skip("kills and restarts processes for several seconds")
	}
	env := readFaultEnv(t, 12*time.Second)
	for _, dataDir := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "data-dir"}[dataDir], func(t *testing.T) {
			env.eachSeed(t, func(t *testing.T, seed uint64) {
				// Issue 11's schedule: a fault about every 5 s, the victim back
				// about 3 s later. A victim back before its peers declare it
				// dead (3 s) returns empty as the same owner: until it has
				// synced, its partitions have one copy, and a fault of that
				// copy's node then is a double fault, which may lose writes
				// (docs/replication.md). Faults 0.5-3 s apart, as this
				// schedule was first written, hit that window by design.
				sched := faultSchedule{up: [2]time.Duration{4 * time.Second, 6 * time.Second}, down: [2]time.Duration{2500 * time.Millisecond, 3500 * time.Millisecond}, graceful: 0.25}
				if dataDir {
					sched.graceful = 0.5
				}
				killRestartUnderLoad(t, seed, env.duration, dataDir, sched)
			})
		})
	}
}

// The workload of killRestartUnderLoad.
const (
	loadKeys    = 500
	loadWriters = 8
	loadReaders = 4
)

func killRestartUnderLoad(t *testing.T, seed uint64, d time.Duration, dataDir bool, sched faultSchedule) {
	c := startProcCluster(t, procClusterOptions{DataDir: dataDir, Args: []string{"--replicas", "2"}})
	h := newHistory()
	key := func(i int) string { return fmt.Sprintf("load.%d", i) }

	// Every key exists before the faults begin.
	nc := dialURL(t, c.url("n1"))
	for i := range loadKeys {
		if w := h.set(nc, key(i), fmt.Sprintf("init-%d", i), faultWriteTimeout); !w.acked {
			t.Fatalf("initial set of %s: %s", key(i), w.failure)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range loadWriters {
		nc := dialAll(t, c)
		rng := rand.New(rand.NewPCG(seed, uint64(w)))
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				h.set(nc, key(rng.IntN(loadKeys)), fmt.Sprintf("w%d-%d", w, n), faultWriteTimeout)
			}
		})
	}
	for r := range loadReaders {
		nc := dialAll(t, c)
		rng := rand.New(rand.NewPCG(seed, uint64(100+r)))
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, ok := h.get(nc, key(rng.IntN(loadKeys)), faultReadTimeout); !ok {
					// Pace a reader whose node is down.
					select {
					case <-ctx.Done():
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
		})
	}
	stopLoad := sync.OnceFunc(func() { cancel(); wg.Wait() })
	defer stopLoad()

	rng := rand.New(rand.NewPCG(seed, 1<<32))
	kills, stops := sched.run(c, rng, d)
	stopLoad()
	c.event("load stopped")
	t.Logf("%d kills, %d graceful stops; %s", kills, stops, h.summary())
	if acked, _, reads := h.counts(); acked < loadKeys+100 || reads < 100 {
		t.Fatalf("only %d acked writes and %d reads: too few for the check to mean anything", acked, reads)
	}

	back, wrong, examples := h.checkReads()
	if back+wrong > 0 {
		t.Errorf("during the faults, %d reads went below a version acked before they began and %d read another value than the acked one of their version; e.g.\n    %s",
			back, wrong, strings.Join(examples, "\n    "))
	}

	h.waitAllRight(t, c, c.names, 20*time.Second)
	if dataDir {
		checkSnapshots(t, c)
	}
}

// dialAll connects to any node of c and fails over to the others.
func dialAll(t *testing.T, c *procCluster) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.urls(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.Timeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// checkSnapshots fails the test when a graceful stop wrote a snapshot with
// fewer than a third of the keys: with R=2 of 3 each node holds about two
// thirds of them (every key exists from the start), and a node with
// --data-dir that restarted loaded its previous snapshot first. It reads
// the nodes' logs ("warm-restart snapshot written ... records=N"), which
// are complete for the processes that have exited.
func checkSnapshots(t *testing.T, c *procCluster) {
	t.Helper()
	var written []string
	small := 0
	for _, p := range c.ended {
		if c.procs[p.name] == p {
			continue // still running: its log is still being written
		}
		for line := range strings.SplitSeq(p.stderr.String(), "\n") {
			if !strings.Contains(line, "warm-restart snapshot written") {
				continue
			}
			_, rest, _ := strings.Cut(line, "records=")
			field, _, _ := strings.Cut(rest, " ")
			written = append(written, p.name+":"+field)
			if n, err := strconv.Atoi(field); err != nil || n < loadKeys/3 {
				small++
			}
		}
	}
	t.Logf("snapshots written by graceful stops (node:records): %v", written)
	if small > 0 {
		t.Errorf("%d of %d graceful stops wrote a snapshot of fewer than %d records (a third of the %d keys); see the list above",
			small, len(written), loadKeys/3, loadKeys)
	}
}
