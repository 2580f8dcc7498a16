package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/roostkv/roost/node"
)

// defaultStopTimeout bounds how long serve waits for the node to stop after
// a signal, inside the 5 s a supervisor is promised.
const defaultStopTimeout = 4500 * time.Millisecond

// readyTimeout bounds how long serve waits for a started node to serve.
const readyTimeout = 30 * time.Second

// serveFlags are the flags of `roost serve`, one per node.Config field.
type serveFlags struct {
	name, listen, clusterListen, nats, http string
	clusterAdvertise                        string
	token, role, dataDir, prefix            string
	datacenter, textRoute                   string
	join                                    listValue
	replicas, partitions                    int
	placementTag                            string
	maxMemory, maxValue, maxKey             sizeValue
	tags                                    tagsValue
	sweepInterval, heartbeatInterval        time.Duration
	ackTimeout, antiEntropy                 time.Duration
	loadTimeout, loadTTL, negativeTTL       time.Duration
	feedExpiry                              bool
	suspectAfter, deadAfter                 int
	logLevel, logFormat                     *choiceValue
	config                                  string
	tlsCert, tlsKey, tlsCA                  string
	sources                                 map[string]string // where the runtime settings came from (runtime.go)
}

func (a *app) newServeCmd() *cobra.Command {
	def := node.DefaultConfig()
	f := &serveFlags{
		logLevel:  newChoice("info", "debug", "info", "warn", "error"),
		logFormat: newChoice("text", "text", "json"),
		maxMemory: sizeValue(def.MaxMemory),
		maxValue:  sizeValue(def.MaxValue),
		maxKey:    sizeValue(def.MaxKey),
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Roost node",
		Long: `Run a Roost node: an embedded NATS server (or a connection to an external
NATS with --nats), the store, and the NATS and HTTP APIs. With no flags it
starts a working single node on 127.0.0.1:4222 (NATS) and 127.0.0.1:7721 (HTTP).

Every flag can also be set in the environment as ROOST_<FLAG> (upper case,
'-' as '_', e.g. ROOST_MAX_MEMORY=64MiB) or in the YAML file given by --config,
whose keys are flag names (max-memory: 64MiB, tags: {zone: a}).
The command line beats the environment, which beats the file.

Once it serves, it prints where on stdout, a line each: 'roost <version>
serving as "<name>"', 'NATS <client URL>', 'HTTP <URL or off>' and, when it
listens for routes, 'CLUSTER <host:port>' (what other nodes --join).

SIGINT or SIGTERM stops the node and exits 0.`,
		Example: `  roost serve
  roost serve --listen 0.0.0.0:4222 --http off --max-memory 256MiB --token s3cret
  ROOST_MAX_MEMORY=1GiB roost serve --config roost.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			onCommandLine := changedFlags(cmd.Flags())
			if err := bindEnvAndConfig(cmd.Flags(), a.lookupEnv); err != nil {
				return err
			}
			f.sources = settingSources(cmd.Flags(), onCommandLine, a.lookupEnv)
			return a.serve(cmd.Context(), f)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&f.name, "name", def.Name, "node name, unique in the cluster; defaults to the host name")
	fs.StringVar(&f.listen, "listen", def.Listen, "NATS client address of the embedded server; port -1 picks a free one")
	fs.StringVar(&f.clusterListen, "cluster-listen", def.ClusterListen, "NATS route address for clustering (host:port)")
	fs.StringVar(&f.clusterAdvertise, "cluster-advertise", def.ClusterAdvertise, "route address (host:port) peers are told to dial for this node, when they cannot reach --cluster-listen (NAT, a proxy); default the --cluster-listen address")
	fs.Var(&f.join, "join", "route URLs of nodes to cluster with, comma-separated (nats://host:port,...)")
	fs.StringVar(&f.nats, "nats", def.NATSURL, "use this external NATS (nats://host:port) instead of embedding a server")
	fs.StringVar(&f.http, "http", def.HTTP, `HTTP API address, or "off"`)
	fs.IntVar(&f.replicas, "replicas", def.Replicas, "owners per partition, capped at the live servers")
	fs.IntVar(&f.partitions, "partitions", def.Partitions, "partition count, fixed for the cluster's life")
	fs.StringVar(&f.placementTag, "placement-tag", def.PlacementTag, "spread each partition's owners over distinct values of this tag (e.g. zone); the same on every node")
	fs.Var(&f.maxMemory, "max-memory", "memory for keys, values and overhead (64MiB, 1GiB, 512MB, bytes); 0 = unlimited")
	fs.Var(&f.maxValue, "max-value", "largest value")
	fs.Var(&f.maxKey, "max-key", "longest key")
	fs.StringVar(&f.token, "token", def.Token, "shared secret NATS and HTTP clients must present")
	fs.Var(&f.tags, "tags", "labels shown in membership (k=v,k2=v2)")
	fs.StringVar(&f.role, "role", def.Role, "server (holds data) or proxy (routes only)")
	fs.StringVar(&f.dataDir, "data-dir", def.DataDir, "directory for a warm-restart snapshot")
	fs.StringVar(&f.prefix, "prefix", def.Prefix, "subject prefix of the NATS API")
	fs.StringVar(&f.textRoute, "text-route", node.TextRoutePartition, "partition: in a cluster, this node's server sends each text-API request straight to its key's primary, no forwarding hop (a request in flight to a primary that is killed is lost with it, as a Go client's is); local: this node's server maps nothing, and this node answers its clients' text requests, forwarding to the primary. Either way the node serves requests other servers routed to it; with --nats the operator's server configuration decides (roost mappings, docs/PROTOCOL.md)")
	fs.StringVar(&f.datacenter, "datacenter", node.DefaultDatacenter, "datacenter name reported where consul reports one (member tag dc, /v1/agent/self)")
	fs.DurationVar(&f.sweepInterval, "sweep-interval", def.SweepInterval, "how often expired entries are swept")
	fs.DurationVar(&f.heartbeatInterval, "heartbeat-interval", def.HeartbeatInterval, "how often the node tells its peers it lives")
	fs.DurationVar(&f.ackTimeout, "ack-timeout", def.AckTimeout, "how long an ack=all write waits for every live owner before it fails with 503")
	fs.DurationVar(&f.antiEntropy, "anti-entropy", def.AntiEntropy, "period of the replicas' digest comparisons (negative = off)")
	fs.DurationVar(&f.loadTimeout, "load-timeout", def.LoadTimeout, "how long a key's primary waits for a loader (roost.load.<key>) before the gets waiting on it fail with 503")
	fs.DurationVar(&f.loadTTL, "load-ttl", def.LoadTTL, "TTL of a loaded value whose loader sent no Roost-TTL (0 = no expiry)")
	fs.DurationVar(&f.negativeTTL, "negative-ttl", def.NegativeTTL, "how long a loader's 404 is remembered and answered without asking again (0 = off)")
	fs.BoolVar(&f.feedExpiry, "feed-expiry", def.FeedExpiry, "announce keys that expire or are evicted on the change feed (roost watch, blocking queries)")
	fs.IntVar(&f.suspectAfter, "suspect-after", def.SuspectAfter, "missed heartbeats before a peer is suspect")
	fs.IntVar(&f.deadAfter, "dead-after", def.DeadAfter, "missed heartbeats before a peer is dead")
	fs.StringVar(&f.tlsCert, "tls-cert", def.TLSCert, "PEM certificate file: serve NATS clients and HTTP over TLS")
	fs.StringVar(&f.tlsKey, "tls-key", def.TLSKey, "PEM private key file of --tls-cert")
	fs.StringVar(&f.tlsCA, "tls-ca", def.TLSCA, "PEM CA file: require client certificates it signed (mutual TLS), and TLS between servers")
	fs.Var(f.logLevel, "log-level", "log level")
	fs.Var(f.logFormat, "log-format", "log format on stderr")
	fs.StringVar(&f.config, configFlag, "", "YAML file of flag values (keys are flag names)")
	return cmd
}

// nodeConfig turns the flags into a node.Config.
func (f *serveFlags) nodeConfig(log *slog.Logger) node.Config {
	cfg := node.DefaultConfig()
	cfg.Name = f.name
	cfg.Listen = f.listen
	cfg.ClusterListen = f.clusterListen
	cfg.ClusterAdvertise = f.clusterAdvertise
	cfg.Join = []string(f.join)
	cfg.NATSURL = f.nats
	cfg.HTTP = f.http
	cfg.Replicas = f.replicas
	cfg.Partitions = f.partitions
	cfg.PlacementTag = f.placementTag
	cfg.MaxMemory = int64(f.maxMemory)
	cfg.MaxValue = int64(f.maxValue)
	cfg.MaxKey = int(min(f.maxKey, 1<<31-1))
	cfg.Token = f.token
	if len(f.tags) > 0 {
		cfg.Tags = map[string]string(f.tags)
	}
	cfg.Role = f.role
	cfg.DataDir = f.dataDir
	cfg.Prefix = f.prefix
	cfg.TextRoute = f.textRoute
	cfg.Datacenter = f.datacenter
	cfg.SweepInterval = f.sweepInterval
	cfg.HeartbeatInterval = f.heartbeatInterval
	cfg.AckTimeout, cfg.AntiEntropy = f.ackTimeout, f.antiEntropy
	cfg.LoadTimeout, cfg.LoadTTL, cfg.NegativeTTL = f.loadTimeout, f.loadTTL, f.negativeTTL
	cfg.FeedExpiry = f.feedExpiry
	cfg.SuspectAfter = f.suspectAfter
	cfg.DeadAfter = f.deadAfter
	cfg.TLSCert, cfg.TLSKey, cfg.TLSCA = f.tlsCert, f.tlsKey, f.tlsCA
	cfg.Logger = log
	cfg.Sources = f.sources
	return cfg
}

// newLogger builds the slog logger of serve, writing to stderr.
func (a *app) newLogger(level, format string) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)            // a pushed log_level changes it (node.Config.LogLevel)
	_ = lv.UnmarshalText([]byte(level)) // choiceValue admits only valid levels
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(a.stderr, opts)), lv
	}
	return slog.New(slog.NewTextHandler(a.stderr, opts)), lv
}

// serve runs a node until ctx ends or SIGINT/SIGTERM arrives.
func (a *app) serve(ctx context.Context, f *serveFlags) error {
	log, level := a.newLogger(f.logLevel.value, f.logFormat.value)
	cfg := f.nodeConfig(log)
	cfg.LogLevel = level
	cfg.OnMaxMemory = func(maxMemory int64) { a.followMemoryLimit(log, maxMemory) } // a pushed max_memory
	// PUT /v1/agent/leave stops serving as a signal does.
	ctx, leave := context.WithCancelCause(ctx)
	defer leave(nil)
	cfg.OnLeave = func() { leave(errLeftByRequest) }
	if err := cfg.Validate(); err != nil {
		return configErr(err)
	}
	if err := validateAdvertise(cfg); err != nil {
		return err
	}
	a.limitMemory(log, cfg.MaxMemory)

	n, err := node.New(cfg)
	if err != nil {
		return configErr(err)
	}
	// Catch signals before starting, so that none is lost in between.
	ctx, stopSignals := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	if err := n.Start(); err != nil {
		return err
	}
	// Start returns once the node serves today; should it become
	// asynchronous, wait for it here. A signal during start-up still stops
	// the node cleanly below.
	readyCtx, cancelReady := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
	err = n.Ready(readyCtx)
	cancelReady()
	if err != nil {
		n.Stop()
		return fmt.Errorf("node not ready within %s: %w", readyTimeout, err)
	}
	httpAddr := "off"
	if h := n.HTTPURL(); h != "" {
		httpAddr = h
	}
	fmt.Fprintf(a.stdout, "roost %s serving as %q\nNATS %s\nHTTP %s\n", node.Version, cfg.Name, n.ClientURL(), httpAddr)
	if addr := n.Bus().ClusterAddr(); addr != "" { // the address other nodes --join
		fmt.Fprintf(a.stdout, "CLUSTER %s\n", addr)
	}
	heapDone := make(chan struct{})
	heapCtx, stopHeap := context.WithCancel(ctx)
	go func() {
		defer close(heapDone)
		a.followHeap(heapCtx, n)
	}()
	defer func() { stopHeap(); <-heapDone }()
	if a.onReady != nil {
		a.onReady(n)
	}

	<-ctx.Done()
	stopSignals() // a second signal kills the process the default way
	log.Info("stopping", "cause", context.Cause(ctx))
	stop, timeout := a.stopNode, a.stopTimeout
	if stop == nil {
		stop = (*node.Node).Stop
	}
	if timeout == 0 {
		timeout = defaultStopTimeout
	}
	stopped := make(chan struct{})
	go func() {
		stop(n)
		close(stopped)
	}()
	select {
	case <-stopped:
		log.Info("stopped")
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("node did not stop within %s; exiting anyway", timeout)
	}
}

// limitMemory sets the Go soft memory limit to the data budget plus an eighth
// plus 16 MiB (node.SoftMemoryLimit), unless GOMEMLIMIT is set or the budget is unlimited.
// --max-memory counts keys, values and per-entry overhead; the garbage
// collector lets the heap grow to twice the live data by default (GOGC=100),
// so without a limit a full cache can use about 2× --max-memory. The limit
// makes the collector work harder as the heap nears it, which keeps the heap
// under 1.25 × --max-memory + 32 MiB as promised.
func (a *app) limitMemory(log *slog.Logger, maxMemory int64) {
	if v, ok := a.lookupEnv("GOMEMLIMIT"); ok && v != "" {
		log.Debug("soft memory limit left to GOMEMLIMIT", "GOMEMLIMIT", v)
		return
	}
	if maxMemory <= 0 {
		return
	}
	limit := node.SoftMemoryLimit(maxMemory)
	a.setMemoryLimit(limit)
	log.Info("Go soft memory limit set from --max-memory", "limit", ibytes(limit))
}

// followMemoryLimit moves the Go soft memory limit along with a pushed
// max_memory, as limitMemory set it at start; 0 (unlimited) lifts it.
func (a *app) followMemoryLimit(log *slog.Logger, maxMemory int64) {
	if v, ok := a.lookupEnv("GOMEMLIMIT"); ok && v != "" {
		return
	}
	limit := int64(math.MaxInt64)
	if maxMemory > 0 {
		limit = node.SoftMemoryLimit(maxMemory) // followHeap takes the store's mapped memory off within a second
	}
	a.setMemoryLimit(limit)
	a.heapLimit.Store(limit)
	log.Info("Go soft memory limit follows the pushed max_memory", "limit", limit)
}

// heapFollow is how often followHeap looks at the store's mapped memory.
const heapFollow = time.Second

// followHeap keeps the Go soft memory limit at node.HeapLimit while the
// node serves: the store keeps its data in memory mapped outside the Go
// heap, which the runtime's limit does not see, so the limit set from
// --max-memory alone would let the heap grow by the whole store again
// (measured: 337 B of RSS per entry at 1M instead of 253; BENCHMARKS.md,
// "Store memory layout"). Not with GOMEMLIMIT set, nor without a budget.
func (a *app) followHeap(ctx context.Context, n *node.Node) {
	if v, ok := a.lookupEnv("GOMEMLIMIT"); ok && v != "" {
		return
	}
	tick := time.NewTicker(heapFollow)
	defer tick.Stop()
	for {
		if mm := n.StoreStats().MaxBytes; mm > 0 {
			// Moved by a MiB or more: SetMemoryLimit is cheap, but
			// the log line of a pushed max_memory should stay the news.
			last := a.heapLimit.Load()
			if limit := node.HeapLimit(mm, n.StoreOffHeap()); limit > last+1<<20 || limit < last-1<<20 {
				a.setMemoryLimit(limit)
				a.heapLimit.Store(limit)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// configErr makes an error of node.Config validation a usage error (exit
// 2). The "node: invalid config: " prefix is dropped: the message already
// names the flag.
func configErr(err error) error {
	msg := strings.TrimPrefix(err.Error(), node.ErrConfig.Error()+": ")
	return usageError{errors.New(msg)}
}

// validateAdvertise rejects a --cluster-advertise that is not host:port, or
// that is given without routes to advertise, as a usage error naming the
// flag (node.Config.Validate does not check it; the bus would refuse it
// only once starting).
func validateAdvertise(cfg node.Config) error {
	if cfg.ClusterAdvertise == "" {
		return nil
	}
	if cfg.NATSURL != "" {
		return usageErrorf("--cluster-advertise: an external NATS does the clustering: drop --cluster-advertise")
	}
	if cfg.ClusterListen == "" && len(cfg.Join) == 0 {
		return usageErrorf("--cluster-advertise: the node has no routes to advertise: add --cluster-listen or --join")
	}
	host, port, err := net.SplitHostPort(cfg.ClusterAdvertise)
	if err != nil || host == "" {
		return usageErrorf("--cluster-advertise: %q is not host:port", cfg.ClusterAdvertise)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return usageErrorf("--cluster-advertise: %q: port must be 1..65535", cfg.ClusterAdvertise)
	}
	return nil
}

// errLeftByRequest is why serve stops after PUT /v1/agent/leave.
var errLeftByRequest = errors.New("left the cluster on request (PUT /v1/agent/leave)")

// noArgs is cobra.NoArgs with a friendlier message.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
