package replicator

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// Ack modes of a write.
type AckMode uint8

const (
	AckPrimary AckMode = iota // answer once the primary applied the write
	AckAll                    // answer once every live owner applied it
)

// Replicator is the shell around the partitions' cores (core.go): it feeds
// them the node's writes, the table, the time, the peers' claims and the
// messages from the bus, and performs the effects they return. Each
// partition's core runs under its own mutex, its loop: one step at a time.
// Every method may be called by any number of goroutines.
type Replicator struct {
	cfg   Config
	log   *slog.Logger
	conn  *nats.Conn
	st    *store.Store
	data  *storeAdapter
	parts []*part
	ackTo string // the subject our replicas acknowledge on

	mu    sync.Mutex // guards table, names
	table *partition.Table
	names []string // the live members that replicate, sorted (setOwners)

	ids     atomic.Pointer[map[string]string] // live member name -> node ID (never modified: replaced)
	peerEnv atomic.Pointer[map[string]bool]   // peer node ID -> it takes log envelopes (its claims say so)
	out     outbox                            // log batches bound for each peer, until the drain's end
	evicts  evictCounts                       // EvictionStats

	peers      claimCache         // what the peers said in their heartbeats
	lastClaims []map[string]Claim // the loop's: claims by partition at the last full tick
	lastHeard  map[string]int64   // the loop's: when each peer's last beat arrived then

	subs     []*nats.Subscription
	ctx      context.Context // cancelled by Stop
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the loop and every goroutine serving a message
	writeIDs atomic.Uint64
	// unackedParts counts the partitions with an ack=all write waiting for
	// a replica: while 0, reads need no barrier (Unacked).
	unackedParts atomic.Int64

	lag         *lagRecorder // of the entries applied in order as a replica
	statusCache digestCache  // the digests Status shows (status.go)

	onLogged atomic.Pointer[func(p int, entries []Entry)] // the change feed's (announce.go); nil = nobody listens

	evq struct { // the store's evictions, until evictLoop steps them (evict.go)
		mu   sync.Mutex
		keys []evictedKey
		kick chan struct{} // buffered 1
	}

	dropMu    sync.Mutex // guards dropping, dropAgain (dropUnheld)
	dropping  bool
	dropAgain bool
}

// part is one partition on this node: its core and what the shell keeps
// beside it.
type part struct {
	p       int
	mu      sync.Mutex // the partition's loop: held while its core steps and its effects are performed
	c       *core
	serving atomic.Bool           // mirrors c.serving() for readers without mu
	held    atomic.Bool           // mirrors c.holds for the drop pass
	busy    atomic.Bool           // mirrors c.busy(): ticked between beats too
	unacked atomic.Bool           // mirrors len(c.unacked) > 0: reads of p may have to wait
	ackedCh chan struct{}         // closed when c.allSeq moves or the role changes; then replaced
	waits   map[uint64]chan error // ack=all writes by ID
	sub     *nats.Subscription    // the partition's log subject, while following it
	readyCh chan struct{}         // closed when serving turns true; replaced when it turns false
	allSeq  uint64                // c.allSeq when ackedCh was last closed
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
		ackTo: cfg.Subjects.NodeAck(cfg.ID),
		lag:   newLagRecorder(),
	}
	r.ids.Store(&map[string]string{})
	r.out.subject = cfg.Subjects.NodeLog
	r.data = newStoreAdapter(cfg.Store, cfg.Partitions)
	logBytes := int(max(cfg.LogBytes/int64(cfg.Partitions), 1))
	for p := range r.parts {
		cc := coreConfig{Self: cfg.Name, P: p, LogSize: cfg.LogSize, LogBytes: logBytes, ChunkBytes: cfg.ChunkBytes,
			RequestTimeout: int64(cfg.RequestTimeout), ClaimLag: int64(2 * cfg.Heartbeat), Replicas: cfg.Replicas}
		r.parts[p] = &part{p: p, c: newCore(cc, partStore{r.data, p}), waits: map[uint64]chan error{}, readyCh: make(chan struct{}), ackedCh: make(chan struct{})}
	}
	r.evq.kick = make(chan struct{}, 1)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// Start subscribes to this node's replication subjects and starts the loop.
func (r *Replicator) Start() error {
	if err := r.cfg.Validate(); err != nil {
		return err
	}
	for _, s := range []struct {
		subject string
		handler nats.MsgHandler
	}{
		{r.cfg.Subjects.NodeRepl(r.cfg.ID), r.onMessage},
		{r.ackTo, r.onAckMessage},
		{r.cfg.Subjects.NodeLog(r.cfg.ID), r.onEnvelope()},
	} {
		sub, err := r.conn.Subscribe(s.subject, s.handler)
		if err != nil {
			r.unsubscribe()
			return err
		}
		_ = sub.SetPendingLimits(-1, 256<<20)
		r.subs = append(r.subs, sub)
	}
	if err := r.conn.Flush(); err != nil {
		r.unsubscribe()
		return err
	}
	r.st.SetEvictHooks(r.evictHooks())
	r.wg.Go(r.loop)
	r.wg.Go(r.evictLoop)
	return nil
}

func (r *Replicator) unsubscribe() {
	for _, s := range r.subs {
		_ = s.Unsubscribe()
	}
	r.subs = nil
}

// Stop ends the loop and fails the writes that wait for acks. It returns
// once every goroutine it started has ended.
func (r *Replicator) Stop() {
	r.st.SetEvictHooks(nil)
	r.cancel()
	r.unsubscribe()
	for _, pt := range r.parts {
		pt.mu.Lock()
		for id, ch := range pt.waits {
			ch <- ErrStopped
			delete(pt.waits, id)
		}
		if pt.sub != nil {
			_ = pt.sub.Unsubscribe()
			pt.sub = nil
		}
		pt.mu.Unlock()
	}
	r.wg.Wait()
}

// step runs one message through partition pt's core and performs its
// effects; the log batches it queued leave at once.
func (r *Replicator) step(pt *part, m Message) error {
	pt.mu.Lock()
	err := pt.c.step(m)
	r.perform(pt, nil)
	pt.mu.Unlock()
	r.Flush()
	return err
}

// perform carries out the effects of pt's core, in order, and mirrors its
// state for readers without the lock. pt.mu is held. Log batches bound
// for peers that take envelopes wait in the outbox (Flush); with acks
// non-nil, so do the acks (sendAcks).
func (r *Replicator) perform(pt *part, acks *ackBox) {
	for _, e := range pt.c.takeEffects() {
		switch e := e.(type) {
		case send:
			if a, ok := e.Msg.(Ack); ok && acks != nil {
				acks.add(e.To, a)
				continue
			}
			r.send(e.To, e.Msg)
		case publish:
			if len(e.To) > 0 {
				r.publish(pt, e)
			}
			if fn := r.onLogged.Load(); fn != nil {
				(*fn)(pt.p, e.Batch.Entries)
			}
		case follow:
			r.follow(pt, e.On)
		case writeDone:
			if ch, ok := pt.waits[e.ID]; ok {
				delete(pt.waits, e.ID)
				ch <- e.Err
			}
		case dropCopy:
			if r.ctx.Err() == nil {
				r.wg.Go(r.dropUnheld)
			}
		}
	}
	serving := pt.c.serving()
	if was := pt.serving.Swap(serving); serving && !was {
		close(pt.readyCh)
	} else if !serving && was {
		pt.readyCh = make(chan struct{})
	}
	pt.held.Store(pt.c.holds)
	pt.busy.Store(pt.c.busy())
	if pt.unacked.Load() && (len(pt.c.unacked) == 0 || pt.c.allSeq != pt.allSeq) {
		close(pt.ackedCh) // readers waiting for an ack look again
		pt.ackedCh = make(chan struct{})
	}
	pt.allSeq = pt.c.allSeq
	if now := len(pt.c.unacked) > 0; pt.unacked.Swap(now) != now {
		if now {
			r.unackedParts.Add(1)
		} else {
			r.unackedParts.Add(-1)
		}
	}
}

// send publishes a wire message to the node named to.
func (r *Replicator) send(to string, m Message) {
	id := r.idOf(to)
	if id == "" {
		return // not live: the core's retry finds out
	}
	data, err := encode(m)
	if err != nil {
		r.log.Error("cannot encode a replication message", "err", err)
		return
	}
	subject := r.cfg.Subjects.NodeRepl(id)
	if _, ok := m.(Ack); ok {
		subject = r.cfg.Subjects.NodeAck(id)
	}
	if r.conn.Publish(subject, data) == nil {
		if ev, ok := m.(Evict); ok {
			r.evicts.count(ev)
		}
	}
}

// publish sends a batch of the log to the partition's replicas: in their
// envelopes when each takes them, else on the partition's log subject. A
// batch with no live replica to go to is not sent at all (perform): an
// owner this node does not know of yet finds the entries by the seq in its
// heartbeat claims, and fetches them or syncs.
func (r *Replicator) publish(pt *part, e publish) {
	if r.queueBatch(e.To, e.AckWanted, &e.Batch) {
		return
	}
	data, err := wire.Marshal(&e.Batch)
	if err != nil {
		r.log.Error("cannot encode a log batch", "err", err)
		return
	}
	msg := &nats.Msg{Subject: r.cfg.Subjects.PartitionLog(pt.p), Data: data}
	if e.AckWanted {
		msg.Reply = r.ackTo
	}
	_ = r.conn.PublishMsg(msg)
}

// follow subscribes to the partition's log, or leaves it.
func (r *Replicator) follow(pt *part, on bool) {
	if pt.sub != nil {
		_ = pt.sub.Unsubscribe()
		pt.sub = nil
	}
	if !on || r.ctx.Err() != nil {
		return
	}
	sub, err := r.conn.Subscribe(r.cfg.Subjects.PartitionLog(pt.p), func(m *nats.Msg) { r.onLog(pt, m) })
	if err != nil {
		r.log.Error("cannot follow a partition's log", "partition", pt.p, "err", err)
		return
	}
	_ = sub.SetPendingLimits(-1, 256<<20)
	pt.sub = sub
}

// onLog takes a batch of a followed partition's log.
func (r *Replicator) onLog(pt *part, msg *nats.Msg) {
	var b Batch
	if err := b.decodeView(msg.Data); err != nil || b.P != pt.p {
		return
	}
	_ = r.step(pt, LogBatch{Batch: b, AckWanted: msg.Reply != ""})
	r.lag.recordBatch(b.Entries, time.Now())
}

// onMessage takes a replication message addressed to this node. Each is
// served on its own goroutine: a snapshot chunk must not hold up others.
func (r *Replicator) onMessage(msg *nats.Msg) {
	m, digest, p, err := decode(msg.Data)
	switch {
	case err != nil:
		r.log.Debug("malformed replication message", "err", err)
	case digest != nil:
		req := digest.(DigestRequest)
		r.background(func() { r.serveDigest(msg, &req) })
	case p >= 0 && p < len(r.parts):
		r.background(func() { _ = r.step(r.parts[p], m) })
	}
}

// onAckMessage takes a replica's ack, or its acks of a drain, on the
// subscription's goroutine.
func (r *Replicator) onAckMessage(msg *nats.Msg) {
	if len(msg.Data) > 0 && msg.Data[0] == tagAcks {
		acks, err := decodeAcks(msg.Data)
		if err != nil {
			return
		}
		for _, a := range acks {
			if a.P >= 0 && a.P < len(r.parts) {
				_ = r.step(r.parts[a.P], a)
			}
		}
		return
	}
	m, _, p, err := decode(msg.Data)
	if err != nil || p < 0 || p >= len(r.parts) {
		return
	}
	_ = r.step(r.parts[p], m)
}

// background runs fn on its own goroutine until Stop.
func (r *Replicator) background(fn func()) {
	if r.ctx.Err() != nil {
		return
	}
	r.wg.Go(fn)
}

// loop ticks the cores, announces this node's claims every beat and runs
// anti-entropy rounds.
func (r *Replicator) loop() {
	tick := time.NewTicker(r.cfg.Tick)
	defer tick.Stop()
	beat := time.NewTicker(r.cfg.Heartbeat)
	defer beat.Stop()
	var ae <-chan time.Time
	if r.cfg.AntiEntropy > 0 {
		t := time.NewTicker(r.cfg.AntiEntropy)
		defer t.Stop()
		ae = t.C
	}
	r.announce()
	perBeat := max(int(r.cfg.Heartbeat/r.cfg.Tick), 1) // ticks per full tick
	ticks := 0
	for {
		select {
		case <-r.ctx.Done(): // stopped
			return
		case now := <-tick.C: // timeouts, retries, fences, hand-offs
			ticks++
			r.tick(now, ticks%perBeat == 0)
		case <-beat.C: // our claims ride our next heartbeat
			r.announce()
		case <-ae: // compare the copies we lead with their replicas'
			r.antiEntropy()
		}
	}
}

// tick steps the partitions with the time and the peers' claims: every
// partition on a full tick (once a heartbeat period, when claims may have
// changed), and in between only those waiting for an answer (busy), so
// that a steady cluster spends nothing on ticks between beats.
func (r *Replicator) tick(now time.Time, full bool) {
	if full || r.lastClaims == nil {
		r.setOwners(false) // a member's first claims may make it one to ask
		r.lastClaims, r.lastHeard = r.peerClaims()
	}
	for p, pt := range r.parts {
		if full || pt.busy.Load() {
			_ = r.step(pt, Tick{Now: now.UnixNano(), Claims: r.lastClaims[p], Heard: r.lastHeard})
		}
	}
}

// announce puts this node's claims in its heartbeats.
func (r *Replicator) announce() {
	if r.cfg.SetClaims == nil {
		return
	}
	cs := claims{Parts: map[int]Claim{}, Env: envelopeV1}
	for _, pt := range r.parts {
		pt.mu.Lock()
		if cl := pt.c.claim(); cl.Role != RoleNone || cl.Holds {
			cs.Parts[pt.p] = cl
		}
		pt.mu.Unlock()
	}
	if data, err := wire.Marshal(&cs); err == nil {
		r.cfg.SetClaims(data)
	}
}

// SetTable applies a new partition table: ids maps live member names to
// node IDs.
func (r *Replicator) SetTable(t *partition.Table, ids map[string]string) {
	r.mu.Lock()
	r.table = t
	r.ids.Store(&ids)
	r.mu.Unlock()
	r.setOwners(true)
}

// setOwners hands every core the table's owners and the live members that
// replicate (servers, and nodes draining their copies, whose heartbeats
// carry claims; a proxy runs no replicator and is never asked anything).
// Unless forced, only when that set of members changed.
func (r *Replicator) setOwners(force bool) {
	r.mu.Lock()
	t := r.table
	var names []string
	if t != nil {
		names = r.replicatingLocked()
	}
	changed := !slices.Equal(names, r.names)
	r.names = names
	r.mu.Unlock()
	if t == nil || !force && !changed {
		return
	}
	for p, pt := range r.parts {
		_ = r.step(pt, SetOwners{Owners: t.Owners(p), Live: names})
	}
}

// replicatingLocked returns the sorted names of the live members that run
// a replicator. r.mu is held.
func (r *Replicator) replicatingLocked() []string {
	var names []string
	ids := *r.ids.Load()
	if r.cfg.Members == nil {
		names = slices.Collect(maps.Keys(ids))
	} else {
		for _, m := range r.cfg.Members().Live("") {
			if ids[m.Name] != "" && (m.Role == membership.RoleServer || len(m.Extra) > 0 || m.Name == r.cfg.Name) {
				names = append(names, m.Name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// HoldAll says the store holds data of every partition (a warm restart
// loaded a snapshot): what this node does not own is handed to the owners
// before it is dropped. Call it before SetTable.
func (r *Replicator) HoldAll() {
	for _, pt := range r.parts {
		_ = r.step(pt, HoldCopy{})
	}
}

// KeepCopies makes the replicator drop nothing from the store from now on:
// a node that stops keeps every copy it holds for its warm-restart
// snapshot, while it hands them over.
func (r *Replicator) KeepCopies() {
	for _, pt := range r.parts {
		_ = r.step(pt, KeepCopy{})
	}
}

// HandOver is a graceful leave: it applies t, a table without this node,
// and waits until the primary of every partition this node holds has its
// copy, or ctx ends. The copies stay in the store: the node is leaving.
func (r *Replicator) HandOver(ctx context.Context, t *partition.Table, ids map[string]string) error {
	r.SetTable(t, ids)
	tick := time.NewTicker(r.cfg.Tick)
	defer tick.Stop()
	for {
		done := true
		for _, pt := range r.parts {
			pt.mu.Lock()
			done = done && pt.c.handedOver()
			pt.mu.Unlock()
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// idOf returns the node ID of member name, "" when it is not live.
func (r *Replicator) idOf(name string) string { return (*r.ids.Load())[name] }

// partitionOf is the partition of key.
func (r *Replicator) partitionOf(key string) int { return partition.Of(key, r.cfg.Partitions) }

// dropUnheld removes from the store every key of a partition this node
// does not hold, in one pass over the store however many partitions were
// handed off: a call during a pass makes the pass run once more instead.
// A partition taken up again during the pass is safe: it is marked held
// before anything is pulled into it, and the pass reads the mark key by key
// under the key's shard lock.
func (r *Replicator) dropUnheld() {
	r.dropMu.Lock()
	if r.dropping {
		r.dropAgain = true
		r.dropMu.Unlock()
		return
	}
	r.dropping = true
	r.dropMu.Unlock()
	for {
		n := r.st.Drop(func(key string) bool { return !r.parts[r.partitionOf(key)].held.Load() })
		r.log.Debug("partitions handed off dropped", "keys_dropped", n)
		r.dropMu.Lock()
		if !r.dropAgain {
			r.dropping = false
			r.dropMu.Unlock()
			return
		}
		r.dropAgain = false
		r.dropMu.Unlock()
	}
}
