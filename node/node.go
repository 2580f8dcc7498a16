package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus"
	"github.com/roostkv/roost/bus/wire"
)

// Version is the Roost release, reported by the micro service and status.
const Version = "0.1.0"

// Node is one Roost node. Build it with New, then Start and Stop it.
type Node struct {
	cfg  Config
	id   string // unique per start of the process
	log  *slog.Logger
	subj wire.Subjects

	bus        *bus.Bus
	store      *store.Store
	members    *membership.Membership
	repl       *replicator.Replicator     // keeps the partitions in step with their other owners (replication.go)
	routing    atomic.Pointer[routing]    // the view and table requests are routed by
	routerDone chan struct{}              // closed when the router loop has ended
	stopViews  func()                     // ends the router's view subscription
	async      asyncGroup                 // goroutines answering forwarded requests
	partSubs   map[int]*nats.Subscription // partition subjects this node serves as primary; owned by the router loop
	svc        micro.Service
	textRoutes atomic.Pointer[textRouter] // the text API's routed subscriptions (route.go); nil when not routing
	feed       *feed                      // the change feed and the blocking queries waiting on it (changes.go)
	gone       atomic.Pointer[goneFeed]   // expirations and evictions announced on the feed, with --feed-expiry (feed_expiry.go)
	http       *http.Server
	httpAddr   string // bound address, known after Start; "" when off
	maxPayload int64  // the bus payload limit in bytes
	started    time.Time
	metrics    *metrics             // operation counters and the registry of /metrics (metrics.go)
	loads      *loads               // read-through loads at the primary (load.go)
	hot        *hotKeys             // the keys read most here (hotkeys.go)
	agentSubs  []*nats.Subscription // force-leave and admin subscriptions (agent_cluster.go)
	agent      *catalogAgent        // the services registered on this node (catalog_agent.go)

	leaving  atomic.Bool   // set first thing by Stop: this node serves no partition any more
	killed   bool          // Kill: stop without telling anyone
	unrouted bool          // tests: act as a build before routed subjects (holds none, says nothing of them)
	warm     bool          // a warm-restart snapshot was loaded (datadir.go)
	ready    chan struct{} // closed once Start has finished
	stopOnce sync.Once
	httpDone chan struct{} // closed when the HTTP server goroutine has ended

	rc         runtimeConfig // the runtime config rules this node follows (runtime_config.go)
	configStop func()        // ends the rule follower; nil before it started
	configDone chan struct{} // closed when the rule follower has ended
}

// New checks cfg and returns a node that is not yet running.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	n := &Node{
		cfg:      cfg,
		id:       nuid.Next(),
		log:      log.With("node", cfg.Name),
		subj:     wire.NewSubjects(cfg.Prefix),
		ready:    make(chan struct{}),
		partSubs: map[int]*nats.Subscription{},
	}
	n.metrics = newMetrics(n)
	n.loads = newLoads(cfg.LoadTTL, cfg.NegativeTTL, n.metrics.reg)
	n.hot = newHotKeys()
	n.initRuntimeConfig()
	return n, nil
}

// Start brings the node up: bus, store, APIs. It does not block; on error
// everything it started is stopped again.
func (n *Node) Start() (err error) {
	defer func() {
		if err != nil {
			n.Stop()
		}
	}()
	n.started = time.Now()
	n.bus, err = bus.Open(bus.Config{
		Name:          n.cfg.Name,
		Listen:        n.cfg.Listen,
		ExternalURL:   n.cfg.NATSURL,
		Token:         n.cfg.Token,
		ClusterListen: n.cfg.ClusterListen,
		Join:          n.cfg.Join,
		MaxPayload:    n.cfg.maxPayload(),
		Logger:        n.log,
		TLSCert:       n.cfg.TLSCert,
		TLSKey:        n.cfg.TLSKey,
		TLSCA:         n.cfg.TLSCA,

		ClusterAdvertise: n.cfg.ClusterAdvertise,
		LocalSubjects:    n.publicSubjects(),
		Mappings:         n.textMappings(),
	})
	if err != nil {
		return err
	}
	n.maxPayload = n.bus.MaxPayload()
	if limit := n.maxPayload - maxHeaderBytes; n.cfg.MaxValue > limit && limit > 0 {
		n.log.Warn("the bus carries smaller messages than --max-value: values are capped", "max_value", limit)
		n.cfg.MaxValue = limit
	}

	scfg := store.DefaultConfig()
	scfg.MaxMemory = n.cfg.MaxMemory
	scfg.SweepInterval = n.cfg.SweepInterval
	scfg.Pinned = "\x00" // Roost's own keys (reserved.go) are never evicted
	if n.store, err = store.New(scfg); err != nil {
		return fmt.Errorf("node: store: %w", err)
	}
	if budget, largest := n.store.ShardBudget(), n.cfg.MaxValue+int64(n.cfg.MaxKey)+store.EntryOverhead; budget > 0 && largest > budget {
		return fmt.Errorf("%w: --max-memory %d is too small for --max-value %d: the largest entry must fit in one store shard (%d bytes); raise --max-memory or lower --max-value",
			ErrConfig, n.cfg.MaxMemory, n.cfg.MaxValue, budget)
	}
	n.store.Start()
	if err = n.loadSnapshot(); err != nil { // --data-dir: before the peers, whose newer data replication merges by version
		return err
	}
	if err = n.startKV(); err != nil {
		return err
	}

	n.agent = newCatalogAgent() // before HTTP, whose catalog routes use it
	n.startCatalogCache()
	if err = n.startHTTP(); err != nil {
		return err
	}
	if err = n.startMembership(); err != nil {
		return err
	}
	if err = n.startService(); err != nil {
		return err
	}
	if err = n.startAgent(); err != nil {
		return err
	}
	if err = n.startConfig(); err != nil { // runtime_config.go: the rules that match this node apply before it is ready
		return err
	}
	if err = n.startCatalog(); err != nil {
		return err
	}
	n.log.Info("roost node ready", "nats", n.bus.ClientURL(), "http", n.httpAddr, "max_memory", n.cfg.MaxMemory)
	close(n.ready)
	return nil
}

// startService registers the NATS APIs as the micro service "roost".
func (n *Node) startService() error {
	svc, err := micro.AddService(n.bus.Conn(), micro.Config{
		Name:        wire.ServiceName,
		Version:     Version,
		Description: "Roost distributed in-memory cache",
		Metadata:    map[string]string{"node": n.cfg.Name, "node_id": n.id},
	})
	if err != nil {
		return fmt.Errorf("node: register micro service: %w", err)
	}
	n.svc = svc
	endpoints := []struct {
		name, subject string
		handler       micro.HandlerFunc
	}{
		{"batch", n.subj.Batch(), n.handleBatch},
		{"scan", n.subj.Scan(), n.handleScan},
		{"status", n.subj.Status(), n.handleStatus},
		{"members", n.subj.Members(), n.handleMembers},
		{"table", n.subj.Table(), n.handleTable},
	}
	for _, op := range n.textOps() {
		if err := svc.AddEndpoint(op.name, op.handler, micro.WithEndpointSubject(n.subj.Text(op.name, ">"))); err != nil {
			return fmt.Errorf("node: endpoint %s: %w", op.name, err)
		}
	}
	for _, ep := range endpoints {
		if err := svc.AddEndpoint(ep.name, ep.handler, micro.WithEndpointSubject(ep.subject)); err != nil {
			return fmt.Errorf("node: endpoint %s: %w", ep.name, err)
		}
	}
	// This node's own subjects: smart clients send a partition's operations
	// straight to its primary; cluster scans gather each node's page.
	own := []struct {
		name, subject string
		handler       micro.HandlerFunc
	}{
		{"node-batch", n.subj.NodeBatch(n.id), n.handleBatch},
		{"node-scan", n.subj.NodeScan(n.id), n.handleNodeScan},
		{"node-status", n.subj.NodeAdmin(n.id, "status"), n.handleStatus},
		{"node-members", n.subj.NodeAdmin(n.id, "members"), n.handleMembers},
	}
	for _, ep := range own {
		if err := svc.AddEndpoint(ep.name, ep.handler, micro.WithEndpointSubject(ep.subject), micro.WithEndpointQueueGroupDisabled()); err != nil {
			return fmt.Errorf("node: endpoint %s: %w", ep.name, err)
		}
	}
	n.startTextRouter()
	// Serve only once the server holds every subscription: a client that
	// connects right after Start must not meet "no responders".
	if err := n.bus.Conn().Flush(); err != nil {
		return fmt.Errorf("node: register API subscriptions: %w", err)
	}
	return nil
}

// startMembership starts heartbeats and the router loop, and, for a node
// that joins others, waits briefly to hear them before serving.
func (n *Node) startMembership() error {
	m, err := membership.New(membership.Config{
		Self: membership.Member{
			ID:          n.id,
			Name:        n.cfg.Name,
			Incarnation: uint64(n.started.UnixMilli()),
			Role:        n.cfg.Role,
			Tags:        n.cfg.Tags,
			Addr:        n.bus.ClientURL(),
			HTTP:        n.httpAddr,
			Partitions:  n.cfg.Partitions,
			Placement:   n.cfg.PlacementTag,
			Datacenter:  n.cfg.datacenter(),
			Build:       Version,
			Routes:      n.holdsRoutes(),
		},
		Interval:     n.cfg.HeartbeatInterval,
		SuspectAfter: n.cfg.SuspectAfter,
		DeadAfter:    n.cfg.DeadAfter,
		Conn:         n.bus.Conn(),
		Subjects:     n.subj,
		Logger:       n.log,
	})
	if err != nil {
		return fmt.Errorf("node: membership: %w", err)
	}
	n.members = m
	if err := m.Start(); err != nil {
		return fmt.Errorf("node: membership: %w", err)
	}
	if n.cfg.Role == RoleServer {
		if err := n.startReplicator(); err != nil {
			return err
		}
	}
	views, cancel := m.Subscribe()
	n.stopViews = cancel
	if len(n.cfg.Join) > 0 || n.cfg.NATSURL != "" {
		// Take no partition from a view of part of the cluster: alone, this
		// node would lead every partition with none of their data. Until
		// it has heard its peers it routes by its own view but leads
		// nothing (the replicator has no table), so requests go to the
		// primaries the peers serve.
		n.routing.Store(newRouting(m.View(), n.cfg.Name, n.cfg.Partitions, n.cfg.Replicas, n.cfg.PlacementTag))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n.awaitPeers(ctx, 5*n.cfg.HeartbeatInterval)
	}
	n.applyView(m.View())
	n.routerDone = make(chan struct{})
	go n.runRouter(views)
	return nil
}

func (n *Node) startHTTP() error {
	if n.cfg.HTTP == HTTPOff {
		return nil
	}
	ln, err := net.Listen("tcp", n.cfg.HTTP)
	if err != nil {
		return fmt.Errorf("node: --http %s: %w", n.cfg.HTTP, err)
	}
	n.httpAddr = ln.Addr().String()
	if n.cfg.TLSCert != "" {
		tc, err := loadTLS(n.cfg.TLSCert, n.cfg.TLSKey, n.cfg.TLSCA)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("node: --http tls: %w", err)
		}
		ln = tls.NewListener(ln, tc)
	}
	n.http = &http.Server{
		Handler:           n.httpHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	n.httpDone = make(chan struct{})
	go func() {
		defer close(n.httpDone)
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Stop stops the APIs, the store and the bus. It is idempotent and returns
// once everything Start started has ended.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		// Serve no partition from now on: requests are forwarded to the new
		// primaries once the peers have heard of the leave, and no read here
		// can miss a write they take meanwhile.
		n.leaving.Store(true)
		n.stopConfig() // no rule applies while the node stops
		if n.repl != nil {
			n.repl.KeepCopies() // the snapshot below holds every copy, handed over or not
		}
		n.stopWaiters() // blocking HTTP queries answer now, so that HTTP shuts down at once
		graceful := n.members != nil && !n.killed
		if graceful && n.cfg.Role == RoleServer {
			// Drain first: as a proxy this node leaves the partition tables
			// but stays a live member the new owners pull its copies from,
			// and it hands each copy to its new primary before it goes.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if err := n.members.SetRole(ctx, RoleProxy); err != nil {
				n.log.Warn("could not announce draining", "err", err)
			}
			cancel()
		}
		if graceful {
			n.handOver(3 * time.Second)
		}
		// The snapshot holds every copy: nothing is dropped from the store
		// any more, and a proxy follows no partition's log, so nothing
		// lands here after it.
		n.saveSnapshot() // --data-dir; not after Kill
		// The API served until now, forwarding every request to the new
		// primaries: with embedded servers a client's requests reach only
		// the node it is connected to, so a node that stopped serving early
		// would leave its clients with "no responders" while it drains.
		n.stopTextRouter() // the new primaries hold their partitions' subjects by now
		if n.svc != nil {
			_ = n.svc.Stop() // drains: handlers may still run a moment (see asyncGroup)
		}
		n.awaitForwards(2 * time.Second)
		n.awaitLoads(n.cfg.LoadTimeout + time.Second)
		if graceful {
			// Tell the peers at once, so they stop routing here.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if err := n.members.Leave(ctx); err != nil {
				n.log.Warn("could not announce leaving", "err", err)
			}
			cancel()
		}
		n.stopAgent()
		n.stopCatalog()
		if n.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_ = n.http.Shutdown(ctx)
			cancel()
			<-n.httpDone
		}
		if n.members != nil {
			n.members.Stop()
			n.stopViews()
			<-n.routerDone
		}
		if n.repl != nil {
			n.repl.Stop()
		}
		if n.store != nil {
			n.store.Stop()
		}
		n.stopFeed()
		if n.bus != nil {
			n.bus.Close()
		}
	})
}

// Kill stops the node the way kill -9 stops a process, for fault-injection
// tests: its server and connections go first, so the peers hear nothing but
// silence; there is no leave and no handover.
func (n *Node) Kill() {
	n.killed = true
	if n.bus != nil {
		n.bus.Close()
	}
	n.Stop()
}

// awaitForwards lets requests being forwarded get their answers before the
// bus closes, for at most wait.
func (n *Node) awaitForwards(wait time.Duration) {
	done := n.async.close()
	select {
	case <-done:
	case <-time.After(wait):
		n.log.Warn("stopping with forwarded requests still unanswered", "waited", wait)
	}
}

// Ready returns nil once the node serves, or ctx's error.
func (n *Node) Ready(ctx context.Context) error {
	select {
	case <-n.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ClientURL is where NATS clients reach this node.
func (n *Node) ClientURL() string { return n.bus.ClientURL() }

// Bus is the node's bus, for tools that want to talk next to it (benchmarks
// put their baseline responders there).
func (n *Node) Bus() *bus.Bus { return n.bus }

// HTTPAddr is the bound address of the HTTP API, or "" when it is off.
func (n *Node) HTTPAddr() string { return n.httpAddr }

// Name is the node's configured name.
func (n *Node) Name() string { return n.cfg.Name }

// ID is unique per start of a node.
func (n *Node) ID() string { return n.id }

// StoreStats are the store's counters now.
func (n *Node) StoreStats() store.Stats { return n.store.Stats() }

// StoreOffHeap is the memory the store has mapped outside the Go heap
// (HeapLimit).
func (n *Node) StoreOffHeap() int64 { return n.store.OffHeapBytes() }

// publicSubjects are the subjects of the API every node answers for any key
// (queue group "q"): served by the node a client is connected to.
func (n *Node) publicSubjects() []string {
	var subjects []string
	for _, op := range n.textOps() {
		subjects = append(subjects, n.subj.Text(op.name, ">"))
	}
	return append(subjects, n.subj.Batch(), n.subj.Scan(), n.subj.Status(), n.subj.Members(), n.subj.Table())
}
