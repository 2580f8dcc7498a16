package replicator

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// Errors of Write.
var (
	// ErrNotPrimary: this node does not lead the partition (any more).
	ErrNotPrimary = errors.New("replicator: not the primary of this partition")
	// ErrNotReady: this node leads the partition but is still pulling it
	// from the other owners; AwaitReady tells when it is done.
	ErrNotReady = errors.New("replicator: partition still syncing")
	// ErrAckTimeout: an ack=all write was applied by the primary but not by
	// every live owner within Config.AckTimeout.
	ErrAckTimeout = errors.New("replicator: not every owner applied the write in time")
	// ErrStopped: the replicator has stopped.
	ErrStopped = errors.New("replicator: stopped")
)

// Defaults of Config.
const (
	DefaultLogSize     = 1024
	DefaultLogBytes    = 64 << 20
	DefaultAckTimeout  = 5 * time.Second
	DefaultAntiEntropy = 5 * time.Second
	DefaultTick        = 500 * time.Millisecond

	requestTimeout = 2 * time.Second // one replication request
	chunkBytes     = 256 << 10       // a snapshot chunk, at most (plus one record)
	retryPause     = 50 * time.Millisecond
	fenceFor       = 5 * time.Second // how long a partition taken over is not led again on a stale table
)

// Config sets up a Replicator.
type Config struct {
	Conn       *nats.Conn
	Subjects   wire.Subjects
	Store      *store.Store
	Name       string // this node's name, as the partition table names it
	ID         string // this node's ID: its request subjects
	Partitions int

	// Members returns the current membership view: the primaries' heads
	// travel in their heartbeats (Member.Extra).
	Members func() membership.View
	// SetHeads puts this node's heads in its heartbeats.
	SetHeads func([]byte)

	LogSize     int           // entries kept per partition to serve gap fetches; default DefaultLogSize
	LogBytes    int64         // bytes of keys and values all the partitions' logs keep, at most; default DefaultLogBytes
	AckTimeout  time.Duration // how long an ack=all write waits for the replicas; default DefaultAckTimeout
	AntiEntropy time.Duration // period of digest rounds; default DefaultAntiEntropy; negative = off
	Tick        time.Duration // how often heads are announced and checked; default DefaultTick
	Logger      *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.LogSize <= 0 {
		c.LogSize = DefaultLogSize
	}
	if c.LogBytes <= 0 {
		c.LogBytes = DefaultLogBytes
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.AntiEntropy == 0 {
		c.AntiEntropy = DefaultAntiEntropy
	}
	if c.Tick <= 0 {
		c.Tick = DefaultTick
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Replicator keeps this node's partitions in step with their other owners.
// Write may be called by any number of goroutines.
type Replicator struct {
	cfg   Config
	log   *slog.Logger
	conn  *nats.Conn
	st    *store.Store
	parts []*part

	mu     sync.Mutex // guards table, ids, prev
	table  *partition.Table
	ids    map[string]string // live member name -> node ID
	ackTo  string            // subject our replicas acknowledge on
	subs   []*nats.Subscription
	ctx    context.Context // cancelled by Stop: ends syncs, pushes and the loop
	cancel context.CancelFunc
	wg     sync.WaitGroup // the loop and every background sync

	handovers   sync.WaitGroup // partitions being pushed to their new primary
	lag         *lagRecorder   // of the entries applied in order as a replica
	snaps       snapCache      // one pass's records, serving snapshots (snapshot.go)
	statusCache digestCache    // the digests Status shows (status.go)

	dropMu    sync.Mutex // guards dropping, dropAgain (dropUnheld)
	dropping  bool
	dropAgain bool
}

// New makes a replicator; Start runs it.
func New(cfg Config) *Replicator {
	cfg = cfg.withDefaults()
	r := &Replicator{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "replicator"),
		conn:  cfg.Conn,
		st:    cfg.Store,
		parts: make([]*part, cfg.Partitions),
		ids:   map[string]string{},
		ackTo: cfg.Subjects.NodeAck(cfg.ID),
		lag:   newLagRecorder(),
	}
	for p := range r.parts {
		r.parts[p] = newPart(p, cfg.LogSize, int(max(cfg.LogBytes/int64(cfg.Partitions), 1)))
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Start subscribes to this node's replication subjects and starts the loop
// that announces heads, checks the primaries' and runs anti-entropy.
func (r *Replicator) Start() error {
	for _, s := range []struct {
		subject string
		handler nats.MsgHandler
	}{
		{r.cfg.Subjects.NodeRepl(r.cfg.ID), r.onRequest},
		{r.ackTo, r.onAck},
	} {
		sub, err := r.conn.Subscribe(s.subject, s.handler)
		if err != nil {
			r.unsubscribe()
			return err
		}
		_ = sub.SetPendingLimits(-1, 64<<20)
		r.subs = append(r.subs, sub)
	}
	if err := r.conn.Flush(); err != nil {
		r.unsubscribe()
		return err
	}
	r.wg.Go(r.loop)
	return nil
}

func (r *Replicator) unsubscribe() {
	for _, s := range r.subs {
		_ = s.Unsubscribe()
	}
	r.subs = nil
}

// Stop ends the loop and every sync, and fails the writes that wait for acks.
func (r *Replicator) Stop() {
	r.cancel()
	r.unsubscribe()
	for _, pt := range r.parts {
		pt.mu.Lock()
		pt.leave(ErrStopped)
		pt.mu.Unlock()
	}
	r.wg.Wait()
}

// loop announces heads and checks the primaries' every Tick, and runs an
// anti-entropy round every AntiEntropy.
func (r *Replicator) loop() {
	tick := time.NewTicker(r.cfg.Tick)
	defer tick.Stop()
	var ae <-chan time.Time
	if r.cfg.AntiEntropy > 0 {
		t := time.NewTicker(r.cfg.AntiEntropy)
		defer t.Stop()
		ae = t.C
	}
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
			r.announceHeads()
			r.checkHeads()
			r.unfence()
		case <-ae:
			r.antiEntropy()
		}
	}
}

// SetTable applies a new partition table: ids maps live member names to node
// IDs. Partitions this node starts to lead are pulled from the other holders
// before they take requests; partitions it starts to replicate are synced
// from their primary; partitions it no longer holds are pushed to their new
// primary and dropped.
func (r *Replicator) SetTable(t *partition.Table, ids map[string]string) {
	r.mu.Lock()
	prev := r.table
	r.table, r.ids = t, ids
	r.mu.Unlock()
	if prev == nil && slices.Contains(t.Members(), r.cfg.Name) {
		// A node that joins: the partitions it takes are held where the
		// others route them without it (its own table before has none).
		prev = t.Without(r.cfg.Name)
	}

	for p, pt := range r.parts {
		owners := t.Owners(p)
		var before []string
		if prev != nil {
			before = prev.Owners(p)
		}
		pt.mu.Lock()
		switch {
		case len(owners) > 0 && owners[0] == r.cfg.Name:
			r.becomePrimary(pt, owners, before)
		case slices.Contains(owners, r.cfg.Name):
			r.becomeReplica(pt, owners[0])
		default:
			r.becomeNone(pt, len(owners) > 0 && pt.holds)
		}
		pt.mu.Unlock()
	}
}

// HoldAll marks every partition as possibly held here (a warm restart loaded
// a snapshot of all of them): the first table hands over and drops those
// this node does not own. Call it before SetTable.
func (r *Replicator) HoldAll() {
	for _, pt := range r.parts {
		pt.mu.Lock()
		pt.setHolds(true)
		pt.mu.Unlock()
	}
}

// unfence takes up again the partitions that another node took over while
// this node's table named it primary, once the fence has passed, or at once
// when the node that took over is not live any more, and the table still
// says so: the node that took over is gone again.
func (r *Replicator) unfence() {
	r.mu.Lock()
	t, ids := r.table, r.ids
	r.mu.Unlock()
	if t == nil {
		return
	}
	now := time.Now()
	for p, pt := range r.parts {
		pt.mu.Lock()
		if pt.role == roleNone && !pt.fenced.IsZero() && (now.After(pt.fenced) || ids[pt.fencedBy] == "") {
			pt.fenced = time.Time{}
			if owners := t.Owners(p); len(owners) > 0 && owners[0] == r.cfg.Name {
				r.becomePrimary(pt, owners, nil)
			}
		}
		pt.mu.Unlock()
	}
}

// HandOver is a graceful leave: it applies t, a table without this node,
// and waits until every partition this node held has been pushed to its new
// primary, or ctx ends.
func (r *Replicator) HandOver(ctx context.Context, t *partition.Table, ids map[string]string) error {
	r.SetTable(t, ids)
	done := make(chan struct{})
	go func() {
		r.handovers.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// current returns the owners of p in the current table, and the node ID of
// each name in it (live members only).
func (r *Replicator) current(p int) (owners []string, ids map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.table == nil {
		return nil, r.ids
	}
	return r.table.Owners(p), r.ids
}

// idOf returns the node ID of member name, "" when it is not live.
func (r *Replicator) idOf(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[name]
}

// background runs fn on its own goroutine until Stop.
func (r *Replicator) background(fn func()) {
	if r.ctx.Err() != nil {
		return
	}
	r.wg.Go(fn)
}

// sleep pauses for d, or returns false when the replicator stops first.
func (r *Replicator) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// partitionOf is the partition of key.
func (r *Replicator) partitionOf(key string) int { return partition.Of(key, r.cfg.Partitions) }
