package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/roostkv/roost/bench/harness"
	"github.com/roostkv/roost/bus/wire"
)

// benchFlags are the flags of `roost bench` that are not harness.Config
// fields as they are.
type benchFlags struct {
	workload, dist, ack, batching, path, echoSubject *choiceValue
	json, quiet                                      bool
	plot                                             string
}

func (a *app) newBenchCmd() *cobra.Command {
	cfg := harness.DefaultConfig()
	f := &benchFlags{
		workload:    newChoice(cfg.Workload, harness.WorkloadGet, harness.WorkloadSet, harness.WorkloadMixed, harness.WorkloadIncr),
		dist:        newChoice(cfg.Dist, harness.DistUniform, harness.DistZipf),
		ack:         newChoice(cfg.Ack, wire.AckPrimary, wire.AckAll),
		batching:    newChoice("on", "on", "off"),
		path:        newChoice(cfg.Path, harness.PathText, harness.PathClient, harness.PathHTTP),
		echoSubject: newChoice(cfg.EchoSubject, harness.EchoFixed, harness.EchoKeyed),
	}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Roost's throughput and latency, against baselines in the same run",
		Long: `Measure Roost's throughput and latency under a workload: against a running
deployment (--server), or a node this command starts in its own process (the
default). Keys are preloaded first; then --concurrency workers per target
send requests for --duration, latencies in HDR histograms.

--nodes N starts N nodes, clustered; the targets talk to the first. With
--procs they run as 'roost serve' processes of this executable instead of
in this process, reached over loopback TCP like a real deployment; they are
stopped (SIGTERM, then killed after 5 s) when the run ends or is interrupted.

--path picks how the roost target reaches Roost: the NATS text API, the Go
client, or the consul KV HTTP API (a node started here serves it on a free
loopback port; with --server, name a node's with --http-addr). The preload
and the baselines go over NATS whatever the path.

With --compare, the same workload also runs against a raw NATS echo
responder on the same bus (the ceiling of any NATS request-reply cache) and
NATS JetStream KV (memory storage, one replica). Each round gives every
target --round of measured time, in turns of --turn that alternate between
the targets (echo, roost, kv, echo, kv, roost, ...), so that drift of a
shared machine hits them alike; ops/s is the median round, and the "× echo"
column and the roost/echo and roost/kv ratios divide those ops/s figures
(ratios of the median rounds). --turn 0 gives each target its round in one
piece (echo, roost, kv, echo, roost, kv, ...), as before --turn. With the
nodes in this process, the report also gives this process's CPU time per
operation and echo's over roost's (cpu_us_per_op, cpu_ratio_to_echo), which
the load of other work on the machine moves far less than ops/s. With the node started here, the KV bucket
lives on a second embedded nats-server with JetStream (the node's has none);
with --server it lives on that server if it has JetStream, or --kv-server.

Every key the run writes starts with --key-prefix, by default "bench-", a
random run id and a dot (bench-3f9a1c7e.), named in the output. Against a
deployment (--server) the run deletes its keys when it ends, fails or is
interrupted, and checks none is left under the prefix; --keep leaves them.
Nodes started here go with the run, keys and all.

Progress goes to stderr, results to stdout: a table, or with --json one
JSON object per target and line.`,
		Example: `  roost bench --compare
  roost bench --compare --workload set --json
  roost bench --workload mixed --get-ratio 0.8 --dist zipf --path client --plot bench.svg
  roost bench --nodes 3 --procs --compare --workload set --ack all
  roost bench --server nats://10.0.0.5:4222 --token s3cret --compare --kv-server nats://10.0.0.6:4222
  roost bench --server nats://10.0.0.5:4222 --http-addr 10.0.0.5:7721 --path http --workload set`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd, []string{"server", "token", "prefix"}, a.lookupEnv); err != nil {
				return err
			}
			return a.bench(cmd, &cfg, f)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&cfg.Server, "server", "", "NATS URL of a running deployment; empty = start --nodes nodes here")
	fs.StringVar(&cfg.Token, "token", "", "token of the deployment (and of the nodes this command starts)")
	fs.StringVar(&cfg.Prefix, "prefix", cfg.Prefix, "subject prefix of the deployment (the nodes' --prefix)")
	fs.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "nodes to start, clustered, when there is no --server (targets talk to the first)")
	fs.StringVar(&cfg.TextRoute, "text-route", "", "--text-route of the nodes the run starts: partition (the default: zero-hop routing of the text API) or local")
	fs.BoolVar(&cfg.Procs, "procs", false, "start the --nodes as 'roost serve' processes instead of in this process")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "", "host:port of a --server node's HTTP API, for --path http (a node started here serves HTTP on a free port)")
	fs.Var(f.workload, "workload", "what workers do: get, set, or mixed (see --get-ratio)")
	fs.Float64Var(&cfg.GetRatio, "get-ratio", cfg.GetRatio, "share of gets in --workload mixed, 0..1")
	fs.Var(f.dist, "dist", "key distribution: uniform, or zipf (see --zipf-s)")
	fs.Float64Var(&cfg.ZipfS, "zipf-s", cfg.ZipfS, "zipf exponent s, > 1: key i is picked ∝ 1/(1+i)^s")
	fs.IntVar(&cfg.Keys, "keys", cfg.Keys, "keyspace, preloaded before measuring")
	fs.IntVar(&cfg.ValueSize, "value-size", cfg.ValueSize, "bytes per value")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "requests in flight per target, on one shared connection")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured time per target")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured time per target before the first round")
	fs.DurationVar(&cfg.Round, "round", cfg.Round, "measured time of one target per round; ops/s is the median round")
	fs.DurationVar(&cfg.Turn, "turn", cfg.Turn, "within a round, targets alternate in turns this long (echo, roost, kv, echo, kv, roost, ...); 0 = one turn per round, as before")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "per request; a request that takes longer counts as an error")
	fs.Var(f.ack, "ack", "ack mode of Roost's writes: primary or all")
	fs.Var(f.batching, "batching", "--path client: batch concurrent calls (on) or send each alone (off)")
	fs.Var((*sizeValue)(&cfg.NearCache), "near-cache", "--path client: the client's near cache (client.WithNearCache), e.g. 64MiB; 0 = off")
	fs.DurationVar(&cfg.NearTTL, "near-ttl", cfg.NearTTL, "--path client with --near-cache: the oldest value the near cache serves")
	fs.Var(f.path, "path", "how to reach Roost: text (NATS text API, raw nats.go), client (the Go client) or http (consul KV API, keep-alive; needs --http-addr with --server, and --ack primary)")
	fs.BoolVar(&cfg.Compare, "compare", false, "also measure the raw NATS echo and NATS KV baselines, interleaved with roost")
	fs.Var(f.echoSubject, "echo-subject", "subjects of the echo baseline: fixed (one per operation) or keyed (the key in the subject, as Roost's)")
	fs.StringVar(&cfg.KVServer, "kv-server", "", "NATS URL with JetStream for the KV baseline; empty = see above")
	fs.StringVar(&cfg.KeyPrefix, "key-prefix", "", `start of every key the run writes; empty = "bench-", a random run id and "."`)
	fs.BoolVar(&cfg.Keep, "keep", false, "with --server: leave the run's keys in the deployment instead of deleting them at the end")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the workers' key choices")
	fs.BoolVar(&f.json, "json", false, "print one JSON object per target and line instead of the table")
	fs.StringVar(&f.plot, "plot", "", "also draw throughput and latency per target into this .svg or .png file (or .pdf)")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress on stderr")
	return cmd
}

// bench runs `roost bench`.
func (a *app) bench(cmd *cobra.Command, cfg *harness.Config, f *benchFlags) error {
	cfg.Workload, cfg.Dist, cfg.Ack = f.workload.value, f.dist.value, f.ack.value
	cfg.Path, cfg.EchoSubject = f.path.value, f.echoSubject.value
	cfg.Batching = f.batching.value == "on"
	if cfg.Server != "" && cmd.Flags().Changed("nodes") {
		return usageErrorf("--server and --nodes exclude each other: bench a running deployment, or start nodes here")
	}
	var plotFormat string
	if f.plot != "" {
		format, err := harness.PlotFormat(f.plot)
		if err != nil {
			return usageErrorf("--plot %s: want a .svg, .png or .pdf file", f.plot)
		}
		plotFormat = format
	}
	if cfg.Procs && cfg.Server == "" {
		exe, err := os.Executable() // the nodes are `roost serve` of this very binary
		if err != nil {
			return fmt.Errorf("--procs: cannot find this executable: %w", err)
		}
		cfg.Exec = exe
	}
	if err := cfg.Validate(); err != nil {
		if errors.Is(err, harness.ErrConfig) {
			return usageError{errors.New(strings.TrimPrefix(err.Error(), harness.ErrConfig.Error()+": "))}
		}
		return err
	}

	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	finish := func() {}
	switch {
	case f.quiet:
	case a.stderrIsTerminal():
		cfg.Progress, finish = harness.Bar(a.stderr)
	default:
		cfg.Progress = harness.Lines(a.stderr)
	}
	rep, err := harness.Run(ctx, *cfg)
	finish()
	if err != nil {
		if ctx.Err() != nil && cmd.Context().Err() == nil {
			return errors.New("bench interrupted")
		}
		return err
	}

	if f.json {
		err = rep.WriteJSON(a.stdout)
	} else {
		err = rep.WriteTable(a.stdout)
	}
	if err != nil {
		return err
	}
	if f.plot != "" {
		if err := writePlot(f.plot, plotFormat, rep); err != nil {
			return err
		}
	}
	return nil
}

// writePlot writes rep's chart to path, in format.
func writePlot(path, format string, rep *harness.Report) error {
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	if err := rep.WritePlot(out, format); err != nil {
		out.Close()
		return fmt.Errorf("--plot: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("--plot: %w", err)
	}
	return nil
}

// stderrIsTerminal reports whether stderr is a terminal, where a progress
// bar may be redrawn in place.
func (a *app) stderrIsTerminal() bool {
	r, ok := a.stderr.(io.Reader) // an *os.File is both
	return ok && isTerminal(r)
}
