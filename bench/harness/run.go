package harness

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms: nanoseconds from 1 µs to a minute, 3 significant
// digits. Longer requests are recorded as a minute.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(time.Minute)
	histDigits  = 3
)

// tickEvery is how often a phase reports its progress.
const tickEvery = 200 * time.Millisecond

// Run measures what cfg asks for and returns the report. It takes about
// (Warmup + Duration) for each target, plus preloading. Ending ctx stops
// the run within a request's time and returns ctx's error. With
// Config.Server, the keys it wrote are deleted before it returns, whether
// it succeeds, fails or is interrupted, unless Config.Keep.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := newRunner(cfg)
	defer r.close()
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	if err := r.measure(ctx); err != nil {
		return nil, err
	}
	r.removeKeys()
	rep := r.report()
	r.emit(Event{Phase: PhaseDone, Elapsed: r.total, Total: r.total})
	return rep, nil
}

// runner is one run: its targets, the workers' state and what to clean up.
type runner struct {
	cfg     Config
	log     *slog.Logger
	keys    keyspace
	value   []byte         // the value of every write, and the preload's
	workers []*workerState // one per worker, reused by every phase of every target
	targets []*measured    // in the order they take turns
	notes   []string       // what the report should say about how it measured
	cleanup string         // what became of the keys written into a --server deployment: Settings.Cleanup
	closers []func()       // run in reverse order by close

	total, elapsed time.Duration // scheduled time of all warmups and rounds, and how much is done
}

// measured is one target and what has been measured of it.
type measured struct {
	name   string
	server string // the NATS URL its requests went to, or the HTTP API's URL with PathHTTP
	t      Target

	hists  []*hdrhistogram.Histogram // one per worker, across rounds: merged for the report
	rounds []float64                 // ops/s of each round
	turns  []float64                 // ops/s of each turn, in order: turn i of every target ran side by side
	cpu    time.Duration             // CPU time of this process in all rounds (see cpuPerOp)
	noCPU  bool                      // cpu could not be read in some turn
	ops    int64                     // successful operations in all rounds
	errs   int64                     // failed operations in all rounds
	err    error                     // the first failure
}

// workerState is what one worker keeps between phases: its random source,
// its key picker.
type workerState struct {
	rng    *rand.Rand
	picker picker
}

func newRunner(cfg Config) *runner {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = runKeyPrefix()
	}
	r := &runner{cfg: cfg, log: log, keys: newKeyspace(cfg.KeyPrefix, cfg.Keys), value: randomValue(cfg.ValueSize)}
	if cfg.Workload == WorkloadIncr {
		r.value = []byte("0") // counters
	}
	for w := range cfg.Concurrency {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(w)))
		r.workers = append(r.workers, &workerState{rng: rng, picker: newPicker(cfg.Dist, cfg.ZipfS, cfg.Keys, rng)})
	}
	return r
}

func (r *runner) onClose(f func()) { r.closers = append(r.closers, f) }

func (r *runner) close() {
	for _, f := range slices.Backward(r.closers) {
		f()
	}
	r.closers = nil
}

func (r *runner) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func (r *runner) emit(e Event) {
	if r.cfg.Progress != nil {
		r.cfg.Progress(e)
	}
}

// measure warms every target up, then runs the rounds: each round gives
// every target its turns, alternating with the others', so that a change of
// load on the machine hits all targets alike instead of the one that ran
// then. Within a round the targets alternate in turns of Config.Turn, in
// an order that alternates (turnOrder), so that a target's
// round and the others' of the same number span the same stretch of time and
// a drift in load lands on each about equally; a round's throughput is its
// turns' operations over their time.
func (r *runner) measure(ctx context.Context) error {
	rounds := r.cfg.rounds()
	n := time.Duration(len(r.targets))
	r.total = n * (r.cfg.Warmup + r.cfg.Duration)
	for _, m := range r.targets {
		m.hists = make([]*hdrhistogram.Histogram, r.cfg.Concurrency)
		for w := range m.hists {
			m.hists[w] = hdrhistogram.New(histLowest, histHighest, histDigits)
		}
	}
	if r.cfg.Warmup > 0 {
		for _, m := range r.targets {
			if _, err := r.phase(ctx, m, PhaseWarmup, 0, len(rounds), r.cfg.Warmup); err != nil {
				return err
			}
		}
	}
	for i, d := range rounds {
		done := make([]turnResult, len(r.targets))
		for j, t := range r.cfg.turns(d) {
			for _, k := range turnOrder(len(r.targets), j) {
				res, err := r.phase(ctx, r.targets[k], PhaseRound, i+1, len(rounds), t)
				if err != nil {
					return err
				}
				done[k].add(res)
				r.targets[k].turns = append(r.targets[k].turns, float64(res.ops)/res.elapsed.Seconds())
			}
		}
		for k, m := range r.targets {
			r.endRound(m, i+1, len(rounds), done[k])
		}
	}
	return nil
}

// turnOrder is the order of n targets in turn j of a round: as configured
// in even turns, the first then the others reversed in odd ones (echo,
// roost, kv, echo, kv, roost, ...), so that each target follows each other
// target equally often and no target always runs right after the same one
// (whose garbage, timers and flushes would spill into its turn: NATS KV's
// JetStream server makes the most).
func turnOrder(n, j int) []int {
	order := make([]int, n)
	for k := range order {
		order[k] = k
	}
	if j%2 == 1 && n > 2 {
		slices.Reverse(order[1:])
	}
	return order
}

// workerResult is what one worker did in one phase.
type workerResult struct {
	ops, errs int64
	err       error // the first failure
}

// turnResult is what a target's workers did in one turn, or in all turns of
// a round, summed.
type turnResult struct {
	workerResult
	elapsed time.Duration
	cpu     time.Duration // this process's CPU time in the turn
	noCPU   bool          // cpu could not be read
}

func (t *turnResult) add(o turnResult) {
	t.ops += o.ops
	t.errs += o.errs
	if t.err == nil {
		t.err = o.err
	}
	t.elapsed += o.elapsed
	t.cpu += o.cpu
	t.noCPU = t.noCPU || o.noCPU
}

// endRound records m's round: its throughput over all its turns.
func (r *runner) endRound(m *measured, round, rounds int, t turnResult) {
	opsPerSec := float64(t.ops) / t.elapsed.Seconds()
	m.rounds = append(m.rounds, opsPerSec)
	m.noCPU = m.noCPU || t.noCPU
	m.ops += t.ops
	m.cpu += t.cpu
	m.errs += t.errs
	if m.err == nil {
		m.err = t.err
	}
	r.emit(Event{Phase: PhaseRound, Target: m.name, Round: round, Rounds: rounds, Elapsed: r.elapsed, Total: r.total, End: true, OpsPerSec: opsPerSec})
}

// phase runs m's workers for d: a warmup, which only checks that the target
// answers, or one turn of a round, which records latencies and returns
// what was done for the round to count.
func (r *runner) phase(ctx context.Context, m *measured, ph Phase, round, rounds int, d time.Duration) (turnResult, error) {
	ev := Event{Phase: ph, Target: m.name, Round: round, Rounds: rounds, Elapsed: r.elapsed, Total: r.total}
	r.emit(ev)
	var stop atomic.Bool
	timer := time.AfterFunc(d, func() { stop.Store(true) })
	defer timer.Stop()
	unhook := context.AfterFunc(ctx, func() { stop.Store(true) })
	defer unhook()

	results := make([]workerResult, len(r.workers))
	var wg sync.WaitGroup
	cpu0, cpuOK := processCPU()
	start := time.Now()
	for w, ws := range r.workers {
		var h *hdrhistogram.Histogram
		if ph == PhaseRound {
			h = m.hists[w]
		}
		wg.Go(func() { results[w] = r.work(m.t, ws, h, &stop) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-done: // every worker has seen stop and has its last reply
			waiting = false
		case <-tick.C: // progress within the phase
			ev.Elapsed = r.elapsed + min(time.Since(start), d)
			r.emit(ev)
		}
	}
	elapsed := time.Since(start)
	cpu1, ok := processCPU()
	r.elapsed += d
	if err := ctx.Err(); err != nil {
		return turnResult{}, err
	}

	total := turnResult{elapsed: elapsed, cpu: cpu1 - cpu0, noCPU: !cpuOK || !ok}
	for _, res := range results {
		total.ops += res.ops
		total.errs += res.errs
		if total.err == nil {
			total.err = res.err
		}
	}
	if total.ops == 0 {
		return turnResult{}, fmt.Errorf("harness: %s: %w in %s of %s (%d failed): %v", m.name, errNoOps, d, ph, total.errs, total.err)
	}
	if ph == PhaseWarmup {
		ev.Elapsed, ev.End, ev.OpsPerSec = r.elapsed, true, float64(total.ops)/elapsed.Seconds()
		r.emit(ev)
	}
	return total, nil
}

// work is one worker's loop: pick a key, get or set it, time it, until stop.
// Only this worker touches ws and h, so there is no lock on this path.
func (r *runner) work(t Target, ws *workerState, h *hdrhistogram.Histogram, stop *atomic.Bool) (res workerResult) {
	getAll := r.cfg.Workload == WorkloadGet
	setAll := r.cfg.Workload == WorkloadSet || r.cfg.Workload == WorkloadIncr
	write := t.Set
	if inc, ok := t.(incrementer); ok && r.cfg.Workload == WorkloadIncr {
		write = func(key string, _ []byte) error { return inc.Incr(key) }
	}
	for !stop.Load() {
		key := r.keys[ws.picker.pick()]
		isGet := getAll || !setAll && ws.rng.Float64() < r.cfg.GetRatio
		start := time.Now()
		var err error
		if isGet {
			err = t.Get(key)
		} else {
			err = write(key, r.value)
		}
		lat := time.Since(start)
		if err != nil {
			res.errs++
			if res.err == nil {
				res.err = err
			}
			continue
		}
		res.ops++
		if h != nil {
			_ = h.RecordValue(min(max(int64(lat), histLowest), histHighest))
		}
	}
	return res
}
