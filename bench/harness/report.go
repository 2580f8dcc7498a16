package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Report is the outcome of one run.
type Report struct {
	Settings Settings
	Rows     []Row    // in the order the targets took turns: echo, roost, kv
	Notes    []string // how it measured: where each baseline ran, what was skipped
}

// Settings are the run's settings, repeated in every JSON row.
type Settings struct {
	Workload    string  `json:"workload"`
	GetRatio    float64 `json:"get_ratio"` // share of gets (1 for get, 0 for set)
	Dist        string  `json:"dist"`
	ZipfS       float64 `json:"zipf_s,omitempty"` // only with dist zipf
	Keys        int     `json:"keys"`
	ValueSize   int     `json:"value_size"`  // bytes
	Concurrency int     `json:"concurrency"` // workers per target
	Duration    string  `json:"duration"`    // measured time per target, a Go duration
	Round       string  `json:"round"`       // length of one round, a Go duration
	Turn        string  `json:"turn"`        // length of a target's turn within a round, a Go duration
	Ack         string  `json:"ack"`
	Batching    string  `json:"batching"`             // "on" or "off"; only the client path batches
	NearCache   int64   `json:"near_cache,omitempty"` // bytes of the client path's near cache; 0 = off
	NearTTL     string  `json:"near_ttl,omitempty"`   // its ttl, a Go duration
	Path        string  `json:"path"`                 // how the roost row reached Roost
	Nodes       int     `json:"nodes"`                // nodes the harness started; 0 = an existing deployment (--server)
	Procs       bool    `json:"procs,omitempty"`      // the nodes were `roost serve` processes, not in the harness's process
	KeyPrefix   string  `json:"key_prefix"`           // every key the run wrote starts with it
	Cleanup     string  `json:"cleanup"`              // what became of them: CleanupRemoved, CleanupKept, CleanupNone, or "failed: " and why
}

// Row is one target's figures.
type Row struct {
	Name      string        // NameEcho, NameRoost or NameKV
	Server    string        // the NATS URL its requests went to, or the HTTP API's URL with --path http
	OpsPerSec float64       // median of its rounds' throughputs
	Rounds    []float64     // each round's throughput, ops/s
	Turns     []float64     // each turn's throughput, ops/s: the i-th turns of all rows ran side by side
	Ops       int64         // successful operations, all rounds
	Errors    int64         // failed operations, all rounds (not in the latencies)
	FirstErr  string        // the first failure; "" = none
	P50       time.Duration // latency percentiles of all rounds' operations
	P99       time.Duration
	P999      time.Duration
	Max       time.Duration
	// Ratios of this row's throughput to a baseline's: OpsPerSec over the
	// baseline's OpsPerSec, the ratio of the two median rounds, so that it
	// agrees with the ops/s shown beside it. 0 = no such baseline in the
	// run (or this row is it).
	RatioToEcho float64
	RatioToKV   float64
	// CPUPerOp is the CPU time of the whole harness process per operation
	// in this row's rounds, 0 when not measured: only when the nodes run in
	// this process, where the node, its server, the baselines and the
	// workers all are. Only one target runs at a time, so a turn's CPU is
	// its target's (with the little the idle ones do meanwhile). On a
	// machine shared with other work it moves much less than ops/s, which
	// follow the CPU the process is given. CPURatioToEcho is the echo's
	// CPUPerOp over this row's: like RatioToEcho, higher is better, and on
	// a CPU-bound run they agree.
	CPUPerOp       time.Duration
	CPURatioToEcho float64
	// TurnRatioToEcho is the median over the turns of this row's ops/s
	// over the echo's in the same turn (the two ran side by side, within a
	// turn's length of each other): the pairs share the machine's load of
	// the moment, so the median moves less between runs than the ratio of
	// the median rounds. 0 with fewer than 3 turns, or no echo.
	TurnRatioToEcho float64
}

// Row returns the row named name, or nil.
func (rep *Report) Row(name string) *Row {
	for i := range rep.Rows {
		if rep.Rows[i].Name == name {
			return &rep.Rows[i]
		}
	}
	return nil
}

func (r *runner) settings() Settings {
	c := r.cfg
	s := Settings{
		Workload:    c.Workload,
		GetRatio:    c.GetRatio,
		Dist:        c.Dist,
		Keys:        c.Keys,
		ValueSize:   c.valueSize(),
		Concurrency: c.Concurrency,
		Duration:    c.Duration.String(),
		Round:       min(c.Round, c.Duration).String(),
		Turn:        c.turns(min(c.Round, c.Duration))[0].String(),
		Ack:         c.Ack,
		Batching:    onOff(c.batching()),
		NearCache:   c.NearCache,
		Path:        c.Path,
		KeyPrefix:   c.KeyPrefix,
		Cleanup:     r.cleanup,
	}
	switch c.Workload {
	case WorkloadGet:
		s.GetRatio = 1
	case WorkloadSet, WorkloadIncr:
		s.GetRatio = 0
	}
	if c.Dist == DistZipf {
		s.ZipfS = c.ZipfS
	}
	if c.NearCache > 0 {
		s.NearTTL = c.NearTTL.String()
	}
	if c.Server == "" {
		s.Nodes, s.Procs = c.Nodes, c.Procs
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// report turns what was measured into rows.
func (r *runner) report() *Report {
	rep := &Report{Settings: r.settings(), Notes: r.notes}
	byName := map[string]*measured{}
	for _, m := range r.targets {
		byName[m.name] = m
	}
	for _, m := range r.targets {
		h := hdrhistogram.New(histLowest, histHighest, histDigits)
		for _, wh := range m.hists {
			h.Merge(wh)
		}
		row := Row{
			Name:      m.name,
			Server:    m.server,
			OpsPerSec: Median(m.rounds),
			Rounds:    m.rounds,
			Turns:     m.turns,
			Ops:       m.ops,
			Errors:    m.errs,
			P50:       time.Duration(h.ValueAtPercentile(50)),
			P99:       time.Duration(h.ValueAtPercentile(99)),
			P999:      time.Duration(h.ValueAtPercentile(99.9)),
			Max:       time.Duration(h.Max()),
		}
		if m.err != nil {
			row.FirstErr = m.err.Error()
		}
		row.CPUPerOp = r.cpuPerOp(m)
		if e := byName[NameEcho]; e != nil && m != e {
			row.RatioToEcho = ratio(row.OpsPerSec, Median(e.rounds))
			row.CPURatioToEcho = ratio(float64(r.cpuPerOp(e)), float64(row.CPUPerOp))
			row.TurnRatioToEcho = turnRatio(m.turns, e.turns)
		}
		if kv := byName[NameKV]; kv != nil && m.name == NameRoost {
			row.RatioToKV = ratio(row.OpsPerSec, Median(kv.rounds))
		}
		rep.Rows = append(rep.Rows, row)
	}
	return rep
}

// turnRatio is the median of a[i]/b[i] over the turns both have; 0 with
// fewer than 3.
func turnRatio(a, b []float64) float64 {
	var rs []float64
	for i := range min(len(a), len(b)) {
		if b[i] > 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	if len(rs) < 3 {
		return 0
	}
	return Median(rs)
}

// cpuPerOp is m's CPUPerOp (see Row).
func (r *runner) cpuPerOp(m *measured) time.Duration {
	if m.noCPU || m.ops == 0 || r.cfg.Server != "" || r.cfg.Procs {
		return 0
	}
	return m.cpu / time.Duration(m.ops)
}

// Median of xs; 0 when empty.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// ratio is a/b, or 0 when b is not positive.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// jsonRow is one line of --json.
type jsonRow struct {
	Name        string    `json:"name"`
	OpsPerSec   float64   `json:"ops_per_sec"`
	P50         float64   `json:"p50_us"`
	P99         float64   `json:"p99_us"`
	P999        float64   `json:"p999_us"`
	MaxUS       float64   `json:"max_us"`
	RatioToEcho *float64  `json:"ratio_to_echo,omitempty"`
	RatioToKV   *float64  `json:"ratio_to_kv,omitempty"`
	CPUPerOp    *float64  `json:"cpu_us_per_op,omitempty"`      // Row.CPUPerOp
	CPURatio    *float64  `json:"cpu_ratio_to_echo,omitempty"`  // Row.CPURatioToEcho
	TurnRatio   *float64  `json:"turn_ratio_to_echo,omitempty"` // Row.TurnRatioToEcho
	Ops         int64     `json:"ops"`
	Errors      int64     `json:"errors"`
	Rounds      int       `json:"rounds"`
	RoundOps    []float64 `json:"round_ops_per_sec"` // each round's throughput, in order
	TurnOps     []float64 `json:"turn_ops_per_sec"`  // each turn's throughput, in order
	Server      string    `json:"server"`
	Settings
}

// WriteJSON writes one JSON object per row, one per line.
func (rep *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, row := range rep.Rows {
		j := jsonRow{
			Name:      row.Name,
			OpsPerSec: round1(row.OpsPerSec),
			P50:       micros(row.P50),
			P99:       micros(row.P99),
			P999:      micros(row.P999),
			MaxUS:     micros(row.Max),
			Ops:       row.Ops,
			Errors:    row.Errors,
			Rounds:    len(row.Rounds),
			RoundOps:  roundAll(row.Rounds),
			TurnOps:   roundAll(row.Turns),
			Server:    row.Server,
			Settings:  rep.Settings,
		}
		if row.RatioToEcho > 0 {
			j.RatioToEcho = ptr(round3(row.RatioToEcho))
		}
		if row.RatioToKV > 0 {
			j.RatioToKV = ptr(round3(row.RatioToKV))
		}
		if row.CPUPerOp > 0 {
			j.CPUPerOp = ptr(float64(row.CPUPerOp.Nanoseconds()/10) / 100)
		}
		if row.CPURatioToEcho > 0 {
			j.CPURatio = ptr(round3(row.CPURatioToEcho))
		}
		if row.TurnRatioToEcho > 0 {
			j.TurnRatio = ptr(round3(row.TurnRatioToEcho))
		}
		if err := enc.Encode(j); err != nil {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func roundAll(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = round1(x)
	}
	return out
}

func micros(d time.Duration) float64 { return round1(float64(d) / float64(time.Microsecond)) }

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// workloadText describes the workload: "get", or "mixed (90% gets)".
func (s Settings) workloadText() string {
	switch s.Workload {
	case WorkloadMixed:
		return fmt.Sprintf("mixed (%.0f%% gets)", 100*s.GetRatio)
	case WorkloadIncr:
		return "incr (by 1; the baselines set the 1-byte value)"
	}
	return s.Workload
}

// distText describes the key distribution: "uniform", or "zipf(s=1.1)".
func (s Settings) distText() string {
	if s.Dist == DistZipf {
		return fmt.Sprintf("zipf(s=%g)", s.ZipfS)
	}
	return s.Dist
}

// whereText describes the nodes measured: "3 nodes in this process", "1
// node process", "an existing deployment".
func (s Settings) whereText() string {
	switch {
	case s.Nodes == 0:
		return "an existing deployment"
	case s.Procs && s.Nodes == 1:
		return "1 node process"
	case s.Procs:
		return fmt.Sprintf("%d node processes", s.Nodes)
	case s.Nodes == 1:
		return "1 node in this process"
	}
	return fmt.Sprintf("%d nodes in this process", s.Nodes)
}

// keysText says where the run's keys went and what became of them.
func (s Settings) keysText() string {
	keys := fmt.Sprintf("keys: %s under %q", Thousands(float64(s.Keys)), s.KeyPrefix)
	switch {
	case s.Cleanup == CleanupRemoved:
		return keys + " written into the deployment and removed after the run (--keep leaves them)"
	case s.Cleanup == CleanupKept:
		return keys + fmt.Sprintf(" left in the deployment (--keep); remove them with DELETE /v1/kv/%s?recurse on a node's HTTP API", s.KeyPrefix)
	case strings.HasPrefix(s.Cleanup, "failed: "):
		return keys + " written into the deployment and NOT removed: " + strings.TrimPrefix(s.Cleanup, "failed: ")
	}
	return keys + ", in the nodes of this run only"
}

// WriteTable writes the human summary: the settings, one line per target,
// the ratios and the notes.
func (rep *Report) WriteTable(w io.Writer) error {
	s := rep.Settings
	work, dist, where := s.workloadText(), s.distText(), s.whereText()
	rounds := 0
	if len(rep.Rows) > 0 {
		rounds = len(rep.Rows[0].Rounds)
	}
	fmt.Fprintf(w, "%s, %s over %d keys, %d-byte values, %d workers per target, path %s (batching %s), ack %s, %s\n",
		work, dist, s.Keys, s.ValueSize, s.Concurrency, s.Path, s.Batching, s.Ack, where)
	fmt.Fprintf(w, "%s per target in %d interleaved rounds; ops/s is the median round, × echo its ratio to echo's ops/s, latencies over all rounds\n", s.Duration, rounds)
	fmt.Fprintf(w, "%s\n\n", s.keysText())

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tops/s\tp50 µs\tp99 µs\tp999 µs\t× echo\terrors\t")
	for _, row := range rep.Rows {
		ratio := "-"
		if row.RatioToEcho > 0 {
			ratio = strconv.FormatFloat(row.RatioToEcho, 'f', 2, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t%s\t%d\t\n", row.Name, Thousands(row.OpsPerSec),
			micros(row.P50), micros(row.P99), micros(row.P999), ratio, row.Errors)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if roost := rep.Row(NameRoost); roost != nil && (roost.RatioToEcho > 0 || roost.RatioToKV > 0) {
		var parts []string
		if roost.RatioToEcho > 0 {
			parts = append(parts, fmt.Sprintf("roost/echo %.2f", roost.RatioToEcho))
		}
		if roost.RatioToKV > 0 {
			parts = append(parts, fmt.Sprintf("roost/kv %.2f", roost.RatioToKV))
		}
		fmt.Fprintf(w, "\n%s (ratios of the median ops/s above)\n", strings.Join(parts, ", "))
		if roost.TurnRatioToEcho > 0 {
			fmt.Fprintf(w, "roost/echo turn by turn (median of the turns' ratios) %.2f\n", roost.TurnRatioToEcho)
		}
		if roost.CPURatioToEcho > 0 {
			fmt.Fprintf(w, "CPU per operation (this process): roost %.1f µs, echo's over roost's %.2f\n", float64(roost.CPUPerOp)/float64(time.Microsecond), roost.CPURatioToEcho)
		}
	}
	for _, row := range rep.Rows {
		if row.FirstErr != "" {
			fmt.Fprintf(w, "%s: %d errors, the first: %s\n", row.Name, row.Errors, row.FirstErr)
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// Thousands formats x rounded, with a space between groups of three
// digits, as BENCHMARKS.md writes figures: 61 962.
func Thousands(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}
