package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

// shortConfig is a run that takes about a second per target set: small
// keyspace, few workers, three rounds of 100 ms.
func shortConfig() Config {
	c := DefaultConfig()
	c.Keys = 2000
	c.Concurrency = 4
	c.Duration = 300 * time.Millisecond
	c.Round = 100 * time.Millisecond
	c.Turn = 50 * time.Millisecond
	c.Warmup = 50 * time.Millisecond
	c.Timeout = 3 * time.Second
	c.Compare = true
	return c
}

// run runs cfg, collecting its events, and fails the test on error.
func run(t *testing.T, cfg Config) (*Report, []Event) {
	t.Helper()
	var events []Event
	cfg.Progress = func(e Event) { events = append(events, e) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep, events
}

// checkRow checks the sanity of one row: operations done, no errors,
// ordered and plausible percentiles.
func checkRow(t *testing.T, rep *Report, name string, rounds int) *Row {
	t.Helper()
	row := rep.Row(name)
	if row == nil {
		t.Fatalf("no %s row in %v", name, rep.Rows)
	}
	if row.Ops <= 0 || row.OpsPerSec <= 0 {
		t.Errorf("%s: %d ops, %.0f ops/s: want some", name, row.Ops, row.OpsPerSec)
	}
	if row.Errors != 0 {
		t.Errorf("%s: %d errors, the first: %s", name, row.Errors, row.FirstErr)
	}
	if len(row.Rounds) != rounds {
		t.Errorf("%s: %d rounds, want %d", name, len(row.Rounds), rounds)
	}
	if !(0 < row.P50 && row.P50 <= row.P99 && row.P99 <= row.P999 && row.P999 <= row.Max && row.Max < 10*time.Second) {
		t.Errorf("%s: percentiles p50 %s p99 %s p999 %s max %s: want 0 < p50 <= p99 <= p999 <= max < 10s",
			name, row.P50, row.P99, row.P999, row.Max)
	}
	return row
}

// TestRunCompare runs the harness against a node it starts, with both
// baselines, through each path and workload.
func TestRunCompare(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"get text", func(c *Config) {}},
		{"set client", func(c *Config) { c.Workload, c.Path, c.Ack = WorkloadSet, PathClient, "all" }},
		{"incr text", func(c *Config) { c.Workload = WorkloadIncr }},
		{"mixed zipf unbatched keyed echo", func(c *Config) {
			c.Workload, c.Dist, c.Path, c.Batching, c.EchoSubject = WorkloadMixed, DistZipf, PathClient, false, EchoKeyed
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := shortConfig()
			tt.edit(&cfg)
			rep, events := run(t, cfg)

			var names []string
			for _, r := range rep.Rows {
				names = append(names, r.Name)
			}
			if got := strings.Join(names, ","); got != "echo,roost,kv" {
				t.Fatalf("rows %s, want echo,roost,kv", got)
			}
			for _, name := range names {
				checkRow(t, rep, name, 3)
			}
			roost := rep.Row(NameRoost)
			if roost.RatioToEcho <= 0 || roost.RatioToKV <= 0 || rep.Row(NameKV).RatioToEcho <= 0 {
				t.Errorf("ratios missing: roost/echo %g, roost/kv %g, kv/echo %g",
					roost.RatioToEcho, roost.RatioToKV, rep.Row(NameKV).RatioToEcho)
			}
			if rep.Row(NameEcho).RatioToEcho != 0 {
				t.Errorf("echo has a ratio to itself")
			}
			if s := rep.Settings; s.Workload != cfg.Workload || s.Path != cfg.Path || s.Nodes != 1 || s.Keys != cfg.Keys {
				t.Errorf("settings %+v do not match the config", s)
			}
			var out bytes.Buffer
			if err := rep.WriteJSON(&out); err != nil || strings.Count(out.String(), "\n") != 3 {
				t.Errorf("WriteJSON: %v, %d lines", err, strings.Count(out.String(), "\n"))
			}

			// The targets took turns, round by round.
			var order []string
			for _, e := range events {
				if e.Phase == PhaseRound && e.End {
					order = append(order, e.Target)
				}
			}
			if got, want := strings.Join(order, " "), "echo roost kv echo roost kv echo roost kv"; got != want {
				t.Errorf("measured in the order %q, want %q", got, want)
			}
			// Within a round, in turns (two of 50 ms: each starts with an
			// event, and is too short for a progress tick), the second in
			// the other order after echo.
			var turns []string
			for _, e := range events {
				if e.Phase == PhaseRound && !e.End {
					turns = append(turns, e.Target)
				}
			}
			if got, want := strings.Join(turns, " "), strings.TrimSpace(strings.Repeat("echo roost kv echo kv roost ", 3)); got != want {
				t.Errorf("turns in the order %q, want %q", got, want)
			}
			if len(roost.Turns) != 6 || roost.TurnRatioToEcho <= 0 {
				t.Errorf("%d turns, turn ratio %g: want 6 turns and their ratio", len(roost.Turns), roost.TurnRatioToEcho)
			}
			if roost.CPUPerOp <= 0 || roost.CPURatioToEcho <= 0 {
				t.Errorf("CPU per op %s, echo's over roost's %g: want both measured with the node in this process", roost.CPUPerOp, roost.CPURatioToEcho)
			}
			if last := events[len(events)-1]; last.Phase != PhaseDone || last.Elapsed != last.Total {
				t.Errorf("last event %+v, want done with all the time elapsed", last)
			}
		})
	}
}

// startNode starts a node on random ports, NATS and HTTP, with the given
// token.
func startNode(t *testing.T, token string) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Name = "harness-test"
	cfg.Listen = "127.0.0.1:-1"
	cfg.HTTP = "127.0.0.1:0"
	cfg.Token = token
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	if err := n.Bus().Conn().Flush(); err != nil { // the server has the API's subscriptions
		t.Fatal(err)
	}
	return n
}

// TestRunAgainstServer benches a running node by URL and token: the echo
// responder joins its server, and the KV baseline is skipped, saying why,
// since a node's server has no JetStream.
func TestRunAgainstServer(t *testing.T) {
	n := startNode(t, "s3cret")
	cfg := shortConfig()
	cfg.Server, cfg.Token = n.ClientURL(), "s3cret"
	rep, _ := run(t, cfg)
	if len(rep.Rows) != 2 {
		t.Fatalf("%d rows, want echo and roost", len(rep.Rows))
	}
	checkRow(t, rep, NameEcho, 3)
	checkRow(t, rep, NameRoost, 3)
	if rep.Settings.Nodes != 0 {
		t.Errorf("nodes = %d, want 0 for an existing deployment", rep.Settings.Nodes)
	}
	if r := rep.Row(NameRoost); r.CPUPerOp != 0 || r.CPURatioToEcho != 0 {
		t.Errorf("CPU per op %s, ratio %g: want none with the deployment in other processes", r.CPUPerOp, r.CPURatioToEcho)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "kv: skipped") {
		t.Errorf("notes %q do not say that kv was skipped", rep.Notes)
	}
	// The run wrote under a prefix of its own, named in the report, and
	// removed what it wrote.
	prefix := rep.Settings.KeyPrefix
	if !strings.HasPrefix(prefix, "bench-") || !strings.HasSuffix(prefix, ".") || len(prefix) != len("bench-12345678.") {
		t.Errorf("key prefix %q, want bench-, a run id and a dot", prefix)
	}
	if rep.Settings.Cleanup != CleanupRemoved {
		t.Errorf("cleanup %q, want %q", rep.Settings.Cleanup, CleanupRemoved)
	}
	if got := n.StoreStats().Keys; got != 0 {
		t.Errorf("node holds %d keys after the run, want none", got)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil || !strings.Contains(table.String(), fmt.Sprintf("keys: 2 000 under %q written into the deployment and removed after the run", prefix)) {
		t.Errorf("table does not say where the keys went (%v):\n%s", err, table.String())
	}

	// --keep leaves them, all under the prefix it was given, and says so.
	keepCfg := cfg
	keepCfg.Keep, keepCfg.KeyPrefix = true, "mine/bench."
	rep, _ = run(t, keepCfg)
	if rep.Settings.Cleanup != CleanupKept || rep.Settings.KeyPrefix != "mine/bench." {
		t.Errorf("with Keep: cleanup %q, prefix %q", rep.Settings.Cleanup, rep.Settings.KeyPrefix)
	}
	if got := n.StoreStats().Keys; got != int64(cfg.Keys) {
		t.Errorf("with Keep the node holds %d keys, want %d", got, cfg.Keys)
	}
	if got := scanKeys(t, n, "s3cret", "mine/bench."); got != cfg.Keys {
		t.Errorf("%d keys under mine/bench., want all %d", got, cfg.Keys)
	}
	table.Reset()
	if err := rep.WriteTable(&table); err != nil || !strings.Contains(table.String(), "left in the deployment (--keep)") {
		t.Errorf("table does not say the keys were kept (%v):\n%s", err, table.String())
	}

	// A run interrupted mid-measure still removes what it wrote (and only
	// that: the kept keys stay).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	intCfg := cfg
	intCfg.KeyPrefix = "interrupted."
	intCfg.Progress = func(e Event) {
		if e.Phase == PhaseRound && e.End {
			cancel()
		}
	}
	if _, err := Run(ctx, intCfg); !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted Run: %v, want context.Canceled", err)
	}
	if got := scanKeys(t, n, "s3cret", "interrupted."); got != 0 {
		t.Errorf("an interrupted run left %d keys", got)
	}
	if got := n.StoreStats().Keys; got != int64(cfg.Keys) {
		t.Errorf("after the interrupted run the node holds %d keys, want the %d kept ones", got, cfg.Keys)
	}

	cfg.Token = "wrong"
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "Authorization") {
		t.Errorf("Run with a wrong token: %v, want an authorization error", err)
	}
}

// scanKeys counts the keys under prefix on n.
func scanKeys(t *testing.T, n *node.Node, token, prefix string) int {
	t.Helper()
	c, err := client.Connect(n.ClientURL(), client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys, err := c.Keys(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// TestTargetsReportFailures checks that each target counts a failed or empty
// reply as an error, not as an operation: a missing key, a node that is gone.
func TestTargetsReportFailures(t *testing.T) {
	n := startNode(t, "")
	cfg := DefaultConfig()
	cfg.Timeout = time.Second
	ep := Endpoint{URL: n.ClientURL(), HTTP: n.HTTPAddr()}

	kvSrv, err := startKVServer("", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kvSrv.Close)
	kv, err := openKV(context.Background(), kvSrv.URL(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kv.Close)

	targets := map[string]Target{NameKV: kv}
	for _, name := range []string{PathText, PathClient, PathHTTP} {
		p, err := pathFor(name)
		if err != nil {
			t.Fatal(err)
		}
		tg, err := p.Open(ep, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tg.Close)
		targets[name] = tg
	}
	for name, tg := range targets {
		if err := tg.Get("absent-" + name); err == nil {
			t.Errorf("%s: Get of a missing key succeeded", name)
		}
		if err := tg.Set("present-"+name, []byte("v")); err != nil {
			t.Errorf("%s: Set: %v", name, err)
		}
		if err := tg.Get("present-" + name); err != nil {
			t.Errorf("%s: Get of a present key: %v", name, err)
		}
		if err := tg.Set("present-"+name, []byte{}); err != nil {
			t.Errorf("%s: Set empty: %v", name, err)
		}
		if err := tg.Get("present-" + name); !errors.Is(err, errEmptyReply) {
			t.Errorf("%s: Get of an empty value: %v, want errEmptyReply", name, err)
		}
	}
	for _, name := range []string{PathText, PathHTTP} {
		if err := targets[name].Set(strings.Repeat("k", 2000), []byte("v")); err == nil {
			t.Errorf("%s: Set of a too-long key succeeded", name)
		}
	}
	// A key the URL must escape reaches the node as it is: the client,
	// whose keys travel in the payload, reads it back.
	odd := "odd/key ?%#+é"
	if err := targets[PathHTTP].Set(odd, []byte("v")); err != nil {
		t.Errorf("http: Set %q: %v", odd, err)
	}
	if err := targets[PathClient].Get(odd); err != nil {
		t.Errorf("client: Get %q written over http: %v", odd, err)
	}

	n.Stop()
	if err := targets[PathText].Get("present-text"); err == nil || !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
		t.Errorf("text: Get from a stopped node: %v, want a connection error", err)
	}
	if err := targets[PathHTTP].Get("present-http"); err == nil {
		t.Errorf("http: Get from a stopped node succeeded")
	}
}

// TestRunRoostOnly runs without baselines: one row, no ratios.
func TestRunRoostOnly(t *testing.T) {
	cfg := shortConfig()
	cfg.Compare = false
	cfg.Workload, cfg.GetRatio = WorkloadMixed, 0.5
	rep, _ := run(t, cfg)
	if len(rep.Rows) != 1 {
		t.Fatalf("%d rows, want roost's alone", len(rep.Rows))
	}
	row := checkRow(t, rep, NameRoost, 3)
	if row.RatioToEcho != 0 || row.RatioToKV != 0 {
		t.Errorf("ratios %g, %g without baselines", row.RatioToEcho, row.RatioToKV)
	}
}
