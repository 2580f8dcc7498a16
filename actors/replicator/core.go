package replicator

import (
	"errors"
	"hash/fnv"
	"slices"

	"github.com/roostkv/roost/actors/store"
)

// Role is what a node is for a partition.
type Role uint8

const (
	RoleNone    Role = iota // no role: holds no copy, or a copy it has not handed over yet
	RolePrimary             // leads it: orders its writes and publishes its log
	RoleReplica             // holds a copy and applies the primary's log
)

func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleReplica:
		return "replica"
	}
	return "none"
}

// Store is what the core reads and writes of this node's store. The core
// calls it only from step, so an implementation needs no more locking than
// the store's own.
type Store interface {
	Set(store.SetRequest) (store.Entry, error)
	Remove(store.DeleteRequest) (version uint64, deleted bool, err error)
	// Get returns the live entry of key, or store.ErrNotFound.
	Get(key string) (store.Entry, error)
	// Apply merges a replicated record by version; applied reports whether
	// it was newer than what the store held.
	Apply(store.Record) (applied bool, err error)
	// Evict removes key's entry if its version is at most version (evict.go).
	Evict(key string, version uint64) bool
	// Records returns partition p's records, sorted by key. The slice is
	// the caller's to keep but not to modify.
	Records(p int) []store.Record
}

// coreConfig is what a partition's core needs to know of its node.
type coreConfig struct {
	Self           string // this node's name
	P              int    // the partition
	LogSize        int    // entries kept for gap fetches
	LogBytes       int    // bytes of keys and values kept for gap fetches
	ChunkBytes     int    // a snapshot or push chunk, at most (plus one record)
	RequestTimeout int64  // nanoseconds a request to another node may take before it is sent again
	ClaimLag       int64  // nanoseconds a peer's claim may lag behind its state (two heartbeat periods)
	Replicas       int    // R: copies the owners must confirm before a copy not owned is dropped
}

// termNodeBits is the number of low bits of a term that name its primary,
// so that two nodes never pick the same term.
const termNodeBits = 16

// core is one partition's replication state on one node: a state machine
// with one entry point, step. It does no I/O, takes no lock and reads no
// clock: what it needs of the world comes in messages (Tick carries the
// time), and what it wants done goes out as effects, which the caller
// drains with takeEffects and performs in order.
type core struct {
	cfg coreConfig
	st  Store

	now    int64            // the last Tick's time
	owners []string         // the partition's owners in this node's table, primary first
	live   map[string]bool  // live members
	reps   []string         // the live owners other than this node (replicas), as of the last SetOwners: shared, never modified
	claims map[string]Claim // what the peers last said of the partition
	heard  map[string]int64 // when each peer's last heartbeat arrived

	role    Role
	ready   bool   // primary: synced, takes writes; replica: synced with its primary
	holds   bool   // the store may hold data of the partition
	term    uint64 // the term led or followed
	seq     uint64 // primary: last ID assigned; replica: last entry applied in order
	since   int64  // primary: when the term started
	maxTerm uint64 // the highest term seen anywhere
	nextReq uint64 // the last request ID used

	// Primary.
	pull   *pull             // the copies being pulled in before the term starts
	pulled map[string]bool   // the members whose copies the term has
	log    ring              // the term's last entries, for gap fetches
	acked  map[string]uint64 // replica -> highest seq it acknowledged this term
	// followers: the nodes that apply this term's log, as far as this node
	// heard (the owners, and any other that synced or fetched from it or
	// claims to follow the term), each with the highest seq it is known to
	// have applied; the log keeps what one of them may still fetch.
	followers map[string]follower
	waiters   []waiter // ack=all writes waiting for the replicas
	// unacked holds the keys of ack=all writes not yet applied by every
	// live replica, with the seq of the latest: a read of one waits
	// (ReadBarrier), so that no reader sees a write that could still vanish
	// with this primary.
	unacked map[string]uint64
	allSeq  uint64 // the highest seq every live replica applied

	// Replica.
	primary string           // the primary followed
	sync    *chunked         // the snapshot sync from the primary
	pending map[uint64]Entry // entries after a gap or during a sync, by seq
	fetch   *request         // the gap fetch running
	fetchAt uint64           // the first seq it asked for
	ackOwed bool             // an entry asked for an ack not sent yet

	// Eviction (evict.go).
	evictWait []Evict // replica: the primary's evictions, until the log reaches them
	ghost     ghost   // the latest evictions of this copy: older records offered back are refused

	// Handing over (any role but primary).
	push       *chunked // our copy being pushed to the primary
	handedTo   string   // the primary that holds our copy ...
	handedTerm uint64   // ... under this term ...
	handedSeq  uint64   // ... from this entry of it on
	resync     bool     // replica: sync a snapshot once the push is done (Repair)
	pushSynced bool     // replica: push our copy once synced, unless the primary pulled it in its term
	pulledBy   string   // the last node that took the partition over from our copy ...
	pulledTerm uint64   // ... under this term

	// fence: another node took the partition over while our table named
	// us primary; we do not lead it before that node lets go.
	fence *fence
	// keep: the node is stopping; it drops no copy (its warm-restart
	// snapshot holds them), though it still hands them over.
	keep bool

	out  []effect       // effects of the steps not taken yet
	recs []store.Record // a write's records, reused
}

// follower is what a primary knows of a node applying its log.
type follower struct {
	seq uint64 // it applied the term's entries up to seq
	at  int64  // when it last asked for or acknowledged any
}

// waiter is an ack=all write waiting until every replica applied seq.
type waiter struct {
	id  uint64
	seq uint64
}

// request is a request in flight to another node.
type request struct {
	to       string
	id       uint64
	deadline int64
}

// chunked is a chunked transfer (a snapshot pulled, a copy pushed).
type chunked struct {
	request
	after   string         // pull: cursor of the next chunk
	head    ID             // pull: the sender's head at the first chunk
	first   bool           // pull: no chunk received yet
	records []store.Record // push: what is left to send
	sent    bool           // a chunk is in flight
	done    bool
}

// pull is a primary's takeover: the copies of every holder, merged into
// the store before the term starts.
type pull struct {
	term    uint64              // the term to lead under
	catchUp bool                // within the current term: only members that appeared since it began
	sources map[string]*chunked // holder -> progress
}

// fence records a takeover of the partition by another node.
type fence struct {
	by   string // the node that took over
	term uint64 // under this term
	at   int64  // when
}

// Errors of a Write.
var (
	// ErrNotPrimary: this node does not lead the partition (any more).
	ErrNotPrimary = errors.New("replicator: not the primary of this partition")
	// ErrNotReady: this node leads the partition but is still pulling it
	// from the other holders.
	ErrNotReady = errors.New("replicator: partition still syncing")
	// ErrAckTimeout: an ack=all write was applied by the primary but not by
	// every live owner in time.
	ErrAckTimeout = errors.New("replicator: not every owner applied the write in time")
	// ErrStopped: the replicator has stopped.
	ErrStopped = errors.New("replicator: stopped")
	// errBadOp: an Op with none or several of Set, Del, Incr and Touch.
	errBadOp = errors.New("replicator: an op needs exactly one of Set, Del, Incr and Touch")
)

func newCore(cfg coreConfig, st Store) *core {
	return &core{cfg: cfg, st: st, live: map[string]bool{}, claims: map[string]Claim{},
		acked: map[string]uint64{}, followers: map[string]follower{}, pending: map[uint64]Entry{}, unacked: map[string]uint64{}, log: newRing(cfg.LogSize, cfg.LogBytes)}
}

// step takes one message. Its error is a Write's (ErrNotPrimary,
// ErrNotReady); every other outcome is in the effects.
func (c *core) step(m Message) error {
	switch m := m.(type) {
	case *Write:
		return c.onWrite(m)
	case CancelWrite:
		c.onCancelWrite(m)
	case SetOwners:
		c.onOwners(m)
	case Tick:
		c.onTick(m)
	case HoldCopy:
		c.holds = true
	case KeepCopy:
		c.keep = true
	case Repair:
		c.onRepair()
	case LogBatch:
		c.onLog(m)
	case Ack:
		c.onAck(m)
	case FetchRequest:
		c.onFetchRequest(m)
	case FetchResponse:
		c.onFetchResponse(m)
	case SnapshotRequest:
		c.onSnapshotRequest(m)
	case SnapshotResponse:
		c.onSnapshotResponse(m)
	case PushRequest:
		c.onPushRequest(m)
	case PushResponse:
		c.onPushResponse(m)
	case Evicted:
		c.onEvicted(m)
	case Evict:
		c.onEvict(m)
	default:
		panic("replicator: unknown message type")
	}
	return nil
}

// takeEffects returns the effects of the steps so far and forgets them.
// The slice is reused by the next step: perform them before stepping again.
func (c *core) takeEffects() []effect {
	out := c.out
	clear(c.out[len(c.out):cap(c.out)]) // let go of what the last steps' effects held
	c.out = c.out[:0]
	return out
}

func (c *core) emit(e effect) { c.out = append(c.out, e) }

func (c *core) sendTo(to string, m Message) { c.emit(send{To: to, Msg: m}) }

// busy reports whether the core waits for something a tick may have to
// retry or decide: a pull, a sync, a fetch, a push, a fence or a copy
// not yet handed off.
func (c *core) busy() bool {
	return c.pull != nil || c.sync != nil || c.fetch != nil || c.push != nil || c.fence != nil ||
		c.role == RoleNone && c.holds
}

// readable reports whether a read of key may be answered now: no ack=all
// write of it waits for a replica.
func (c *core) readable(key string) bool {
	_, waiting := c.unacked[key]
	return !waiting
}

// serving reports whether this node takes the partition's requests.
func (c *core) serving() bool { return c.role == RolePrimary && c.ready }

// claim is what this node says of the partition in its heartbeats.
func (c *core) claim() Claim {
	if c.pull != nil {
		return Claim{Role: c.role, Term: c.pull.term, Holds: c.holds}
	}
	return Claim{Role: c.role, Ready: c.ready, Term: c.term, Seq: c.seq, Holds: c.holds}
}

// ---- the table ----

func (c *core) onOwners(m SetOwners) {
	c.owners = slices.Clone(m.Owners)
	clear(c.live)
	for _, name := range m.Live {
		c.live[name] = true
	}
	c.reps = nil
	for _, name := range c.owners {
		if name != c.cfg.Self && c.live[name] {
			c.reps = append(c.reps, name)
		}
	}
	c.adopt()
}

// adopt takes the role the table gives this node.
func (c *core) adopt() {
	switch {
	case len(c.owners) > 0 && c.owners[0] == c.cfg.Self:
		c.fenceOrLead()
	case slices.Contains(c.owners, c.cfg.Self):
		c.fence = nil
		c.becomeReplica(c.owners[0])
	default:
		c.fence = nil
		c.becomeNone()
	}
}

// fenceOrLead leads the partition unless another node took it over.
func (c *core) fenceOrLead() {
	if c.fence != nil {
		c.becomeNone()
		return
	}
	if c.role == RolePrimary {
		c.releaseWaiters() // replicas that left are waited for no more
		c.catchUp()
		return
	}
	c.becomePrimary()
}

// catchUp pulls, before serving on, the copies of members that appeared
// since the term began: a node back from a split or a cut, or one that
// started alone, may hold writes the term has not seen.
func (c *core) catchUp() {
	if c.pull != nil {
		c.addSources()
		c.pullMore()
		return
	}
	var fresh []string
	for name := range c.live {
		if name != c.cfg.Self && !c.pulled[name] {
			fresh = append(fresh, name)
		}
	}
	if len(fresh) == 0 {
		return
	}
	c.ready = false
	c.pull = &pull{term: c.term, catchUp: true, sources: map[string]*chunked{}}
	for _, name := range fresh {
		c.pull.sources[name] = &chunked{request: request{to: name}, first: true}
	}
	c.pullMore()
}

// leave ends the current role: waiting writes fail, the log is left.
func (c *core) leave() {
	for _, w := range c.waiters {
		c.emit(writeDone{ID: w.id, Err: ErrNotPrimary})
	}
	c.waiters = nil
	if c.role == RoleReplica {
		c.emit(follow{On: false})
	}
	c.role, c.ready = RoleNone, false
	c.pull, c.sync, c.fetch = nil, nil, nil
	clear(c.pending)
	clear(c.acked)
	clear(c.followers)
	clear(c.unacked)
	c.log.reset()
	c.ackOwed = false
}

// ---- primary ----

// becomePrimary starts a takeover: every other holder's copy is pulled in,
// and each stops leading the partition, before the new term starts.
func (c *core) becomePrimary() {
	c.leave()
	c.role, c.holds = RolePrimary, true
	c.handedTo, c.handedTerm, c.handedSeq = "", 0, 0 // what we hold from now on is ours
	c.push, c.resync = nil, false
	c.pull = &pull{term: c.newTerm(), sources: map[string]*chunked{}}
	c.addSources()
	c.pullMore()
}

// newTerm returns a term above every term seen, whose low bits name this node.
func (c *core) newTerm() uint64 {
	epoch := max(c.maxTerm>>termNodeBits+1, uint64(max(c.now, 0))/1e6)
	t := epoch<<termNodeBits | termNode(c.cfg.Self)
	c.maxTerm = t
	return t
}

// termNode is the low bits of the terms node name leads under.
func termNode(name string) uint64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return uint64(h.Sum32()) & (1<<termNodeBits - 1)
}

// addSources adds to the takeover every live node: any of them may hold a
// copy (an owner of this table or an earlier one, a node draining, a node
// back with its data dir), and what they say of it in their heartbeats may
// not have reached us yet. Asking one that holds nothing costs one empty
// chunk.
func (c *core) addSources() {
	for name := range c.live {
		if name != c.cfg.Self && c.pull.sources[name] == nil {
			c.pull.sources[name] = &chunked{request: request{to: name}, first: true}
		}
	}
}

// pullMore asks every source for its next chunk, and starts the term once
// every live source is done.
func (c *core) pullMore() {
	done := true
	names := make([]string, 0, len(c.pull.sources))
	for name := range c.pull.sources {
		names = append(names, name)
	}
	slices.Sort(names) // the same effects in the same order, run after run
	for _, name := range names {
		src := c.pull.sources[name]
		if !c.live[name] {
			if src.done {
				// Out of sight, it may lead the partition on its side of a
				// cut and take writes: pulled again if it comes back before
				// the term starts (addSources), caught up with after.
				delete(c.pull.sources, name)
			}
			continue
		}
		if src.done {
			continue
		}
		done = false
		if !src.sent {
			src.sent = true
			c.nextReq++
			src.id, src.deadline = c.nextReq, c.now+c.cfg.RequestTimeout
			c.sendTo(name, SnapshotRequest{P: c.cfg.P, From: c.cfg.Self, Req: src.id, After: src.after, FenceTerm: c.pull.term})
		}
	}
	if done {
		c.startTerm()
	}
}

// startTerm makes this node the ready primary under the takeover's term
// (or, after a catch-up, under the same term again).
func (c *core) startTerm() {
	if !c.pull.catchUp {
		c.pulledBy = "" // we take writes of our own from now on
		c.term, c.seq, c.since, c.allSeq = c.pull.term, 0, c.now, 0
		c.log.reset()
		clear(c.acked)
		clear(c.followers)
		clear(c.unacked)
		c.pulled = map[string]bool{}
	}
	for name, src := range c.pull.sources {
		if src.done {
			c.pulled[name] = true
		}
	}
	c.pull = nil
	c.ready = true
}

// replicas returns the live owners other than this node: a slice the
// core shares (every write names it), which callers must not modify;
// SetOwners replaces it.
func (c *core) replicas() []string { return c.reps }

func (c *core) onWrite(w *Write) error {
	switch {
	case c.role != RolePrimary:
		return ErrNotPrimary
	case !c.ready:
		return ErrNotReady
	}
	recs := c.recs[:0]
	for i, op := range w.Ops {
		rec, res := c.apply(op)
		w.Results[i] = res
		if rec.Key != "" {
			recs = append(recs, rec)
		}
	}
	defer func() { clear(recs); c.recs = recs[:0] }()
	if len(recs) == 0 {
		if w.Ack == AckAll {
			c.emit(writeDone{ID: w.ID})
		}
		return nil
	}
	b := Batch{P: c.cfg.P, Entries: make([]Entry, len(recs))}
	for i, rec := range recs {
		c.seq++
		b.Entries[i] = entryOf(c.cfg.P, ID{c.term, c.seq}, rec)
	}
	c.logEntries(b.Entries)
	wait := w.Ack == AckAll
	c.emit(publish{Batch: b, AckWanted: wait, To: c.replicas()})
	if wait {
		for _, e := range b.Entries {
			c.unacked[e.Key] = e.Seq
		}
		c.waiters = append(c.waiters, waiter{id: w.ID, seq: c.seq})
		c.releaseWaiters()
	}
	return nil
}

// apply makes one op in the store; rec is the record to log (Key "" when
// nothing changed).
func (c *core) apply(op Op) (rec store.Record, res OpResult) {
	if op.count() != 1 {
		return rec, OpResult{Err: errBadOp}
	}
	switch {
	case op.Incr != nil:
		return c.applyIncr(*op.Incr)
	case op.Touch != nil:
		return c.applyTouch(*op.Touch)
	case op.Set != nil:
		e, err := c.st.Set(*op.Set)
		if err != nil {
			return rec, OpResult{Err: err}
		}
		return recordOf(e), OpResult{Entry: e}
	default:
		v, deleted, err := c.st.Remove(*op.Del)
		res = OpResult{Entry: store.Entry{Key: op.Del.Key, Version: v}, Err: err}
		if deleted {
			rec = store.Record{Key: op.Del.Key, Version: v, Deleted: true}
		}
		return rec, res
	}
}

func (c *core) onCancelWrite(m CancelWrite) {
	c.waiters = slices.DeleteFunc(c.waiters, func(w waiter) bool { return w.id == m.ID })
}

func (c *core) onAck(a Ack) {
	if c.role != RolePrimary || a.Term != c.term || a.Seq <= c.acked[a.Node] {
		return
	}
	c.acked[a.Node] = a.Seq
	c.releaseWaiters()
	c.heardFrom(a.Node, a.Seq)
	c.trimLog()
}

// logFloor is the highest seq of the term that every follower has
// applied, as far as this node heard; c.seq when the partition has none.
// An owner of this node's table counts as a follower from the start, at 0
// until heard of. No follower fetches an entry at or below the floor: a
// replica's seq never goes back within a term but by syncing a snapshot,
// whose head is this node's seq when served (heardFrom). A node this node
// has not heard of that fetches an entry forgotten is answered Truncated
// and syncs, as a replica too far behind does.
func (c *core) logFloor() uint64 {
	floor := c.seq
	for _, name := range c.owners {
		if name != c.cfg.Self {
			floor = min(floor, c.followers[name].seq)
		}
	}
	for _, f := range c.followers {
		floor = min(floor, f.seq)
	}
	return floor
}

// heardFrom records that node name applied the term's log up to seq.
func (c *core) heardFrom(name string, seq uint64) {
	if name == c.cfg.Self {
		return
	}
	f := c.followers[name]
	f.seq, f.at = max(f.seq, seq), c.now
	c.followers[name] = f
}

// heardClaims takes the followers' heartbeat claims: a replica of the term
// applied what it claims, and a node that is not an owner stops counting as
// a follower when it leaves the live members or says in a beat heard
// later than its last request that it no longer follows the term.
func (c *core) heardClaims() {
	for name, cl := range c.claims {
		if cl.Role == RoleReplica && cl.Term == c.term && name != c.cfg.Self {
			f := c.followers[name]
			if cl.Ready {
				f.seq = max(f.seq, cl.Seq)
			}
			f.at = max(f.at, cl.Seen)
			c.followers[name] = f
		}
	}
	for name, f := range c.followers {
		if slices.Contains(c.owners, name) {
			continue
		}
		cl, ok := c.claims[name]
		follows := ok && cl.Role == RoleReplica && cl.Term == c.term
		if !c.live[name] || !follows && c.now > f.at+c.cfg.ClaimLag {
			delete(c.followers, name)
		}
	}
}

// logEntries keeps, of entries just logged, those some other owner may
// still fetch: none when the partition has no other owner.
func (c *core) logEntries(entries []Entry) {
	floor := c.logFloor()
	for i := range entries {
		if entries[i].Seq > floor {
			c.log.add(entries[i])
		}
	}
	c.log.trim(floor)
}

// trimLog forgets the entries every other owner applied.
func (c *core) trimLog() {
	if c.role == RolePrimary && len(c.log.entries) > 0 {
		c.log.trim(c.logFloor())
	}
}

// releaseWaiters answers the writes every live replica has applied, and
// lets reads of their keys through.
func (c *core) releaseWaiters() {
	replicas := c.replicas()
	all := c.seq
	for _, r := range replicas {
		all = min(all, c.acked[r])
	}
	if all > c.allSeq {
		c.allSeq = all
		for k, seq := range c.unacked {
			if seq <= all {
				delete(c.unacked, k)
			}
		}
	}
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		all := true
		for _, r := range replicas {
			if c.acked[r] < w.seq {
				all = false
				break
			}
		}
		if all {
			c.emit(writeDone{ID: w.id})
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

func (c *core) onFetchRequest(m FetchRequest) {
	resp := FetchResponse{P: c.cfg.P, From: c.cfg.Self, Req: m.Req}
	switch {
	case !c.serving():
		resp.Refused = "not the ready primary"
	case m.Term != c.term:
		resp.Truncated = true
	default:
		c.heardFrom(m.From, m.First-1)
		entries, ok := c.log.slice(m.First, m.Last)
		resp.Entries, resp.Truncated = entries, !ok

	}
	c.sendTo(m.From, resp)
}

// onPushRequest merges a pushed copy: the ready primary keeps and logs the
// records that are newer, so that its replicas get them too.
func (c *core) onPushRequest(m PushRequest) {
	resp := PushResponse{P: c.cfg.P, From: c.cfg.Self, Req: m.Req}
	if !c.serving() {
		resp.Refused = "not the ready primary"
		c.sendTo(m.From, resp)
		return
	}
	seq := c.seq
	c.mergeAndLog(c.unevicted(m.From, m.Records))
	resp.Head, resp.Applied = ID{c.term, c.seq}, int(c.seq-seq)
	c.sendTo(m.From, resp)
}

// ---- serving copies ----

// onSnapshotRequest serves one chunk of this node's copy. A takeover
// (FenceTerm) under a higher term than any this node leads or follows makes
// it stop leading first; under a lower one it is refused, naming the leader.
func (c *core) onSnapshotRequest(m SnapshotRequest) {
	resp := SnapshotResponse{P: c.cfg.P, From: c.cfg.Self, Req: m.Req, Head: ID{c.term, c.seq}}
	if m.FromPrimary && !c.serving() {
		resp.Refused = "not the ready primary"
		c.sendTo(m.From, resp)
		return
	}
	if m.FromPrimary {
		// A replica syncing: it resumes the log after the head of its
		// first chunk, and the log keeps what follows for it.
		var head uint64
		if m.After == "" {
			head = c.seq
		}
		c.heardFrom(m.From, head)
	}
	if t := m.FenceTerm; t != 0 {
		c.maxTerm = max(c.maxTerm, t)
		if leader, lt := c.leaderTerm(); lt > t {
			resp.Superseded, resp.Refused = lt, leader
			c.sendTo(m.From, resp)
			return
		}
		if c.role == RolePrimary || c.fence != nil {
			c.leave()
			c.fence = &fence{by: m.From, term: t, at: c.now}
		}
		c.pulledBy, c.pulledTerm = m.From, t
	}
	recs := c.st.Records(c.cfg.P)
	i := 0
	if m.After == "" {
		resp.Evicted = c.ghost.list()
	}
	if m.After != "" {
		i, _ = slices.BinarySearchFunc(recs, m.After, func(r store.Record, after string) int {
			if r.Key <= after {
				return -1
			}
			return 1
		})
	}
	size := 0
	for ; i < len(recs) && size < c.cfg.ChunkBytes; i++ {
		resp.Records = append(resp.Records, entryOf(c.cfg.P, ID{}, recs[i]))
		size += len(recs[i].Key) + len(recs[i].Value) + 32
	}
	if i < len(recs) {
		resp.Next = recs[i-1].Key
	}
	c.sendTo(m.From, resp)
}

// leaderTerm returns the node this node knows to lead the partition under
// the highest term, and that term: itself as primary, the node that fenced
// it, or the primary it follows.
func (c *core) leaderTerm() (string, uint64) {
	switch {
	case c.role == RolePrimary && c.pull != nil:
		return c.cfg.Self, c.pull.term
	case c.role == RolePrimary:
		return c.cfg.Self, c.term
	case c.fence != nil:
		return c.fence.by, c.fence.term
	case c.role == RoleReplica && c.ready:
		return c.primary, c.term
	}
	return "", 0
}

func (c *core) onSnapshotResponse(m SnapshotResponse) {
	switch {
	case c.pull != nil && c.pull.sources[m.From] != nil && c.pull.sources[m.From].id == m.Req:
		c.onPulled(c.pull.sources[m.From], m)
	case c.sync != nil && c.sync.id == m.Req && m.From == c.primary:
		c.onSynced(m)
	}
}

// onPulled merges a chunk of a takeover.
func (c *core) onPulled(src *chunked, m SnapshotResponse) {
	src.sent = false
	switch {
	case m.Superseded != 0:
		// Another node leads under a higher term: ours is over before it began.
		c.maxTerm = max(c.maxTerm, m.Superseded)
		by := m.Refused
		if by == "" {
			by = m.From
		}
		c.leave()
		c.fence = &fence{by: by, term: m.Superseded, at: c.now}
		return
	case m.Refused != "":
		return // asked again on the next tick
	}
	c.learnEvictions(m.Evicted)
	if recs := c.unevicted("", m.Records); c.pull.catchUp {
		c.mergeAndLog(recs)
	} else {
		c.merge(recs)
	}
	if m.Next == "" {
		src.done = true
	} else {
		src.after = m.Next
	}
	c.pullMore()
}

// merge applies records by version.
func (c *core) merge(recs []Entry) {
	for i := range recs {
		_, _ = c.st.Apply(recs[i].record())
	}
}

// mergeAndLog applies records by version as the primary of a running term,
// and logs those that were newer so that the replicas get them too.
func (c *core) mergeAndLog(recs []Entry) {
	var b Batch
	for _, e := range recs {
		if ok, _ := c.st.Apply(e.record()); ok {
			c.seq++
			e.P, e.Term, e.Seq = c.cfg.P, c.term, c.seq
			b.Entries = append(b.Entries, e)
		}
	}
	if len(b.Entries) > 0 {
		c.logEntries(b.Entries)
		b.P = c.cfg.P
		c.emit(publish{Batch: b, To: c.replicas()})
	}
}

// ---- replica ----

// becomeReplica follows primary: it subscribes to the log and syncs a
// snapshot; entries that arrive meanwhile wait in pending.
func (c *core) becomeReplica(primary string) {
	if c.role == RoleReplica && c.primary == primary {
		return
	}
	c.pushSynced = c.holds // what we held may be newer than the primary's (we led, or followed another)
	c.leave()
	c.role, c.primary, c.holds = RoleReplica, primary, true
	c.handedTo, c.handedTerm, c.handedSeq = "", 0, 0 // what we hold from now on is ours
	if c.push != nil && c.push.to != primary {
		// A hand-off to an earlier primary, refused for ever: our copy
		// goes to this one once synced (pushSynced), and a push in the
		// way would block that and every repair.
		c.push, c.resync = nil, false
	}
	c.emit(follow{On: true})
	c.startSync()
}

// startSync (re)starts the snapshot sync from the primary.
func (c *core) startSync() {
	c.ready, c.fetch = false, nil
	c.sync = &chunked{request: request{to: c.primary}, first: true}
	c.syncMore()
}

func (c *core) syncMore() {
	s := c.sync
	if s.sent || !c.live[c.primary] {
		return
	}
	s.sent = true
	c.nextReq++
	s.id, s.deadline = c.nextReq, c.now+c.cfg.RequestTimeout
	c.sendTo(c.primary, SnapshotRequest{P: c.cfg.P, From: c.cfg.Self, Req: s.id, After: s.after, FromPrimary: true})
}

// onSynced merges a chunk of the sync; after the last, the log resumes from
// the head of the first.
func (c *core) onSynced(m SnapshotResponse) {
	s := c.sync
	s.sent = false
	if m.Refused != "" {
		return // asked again on the next tick
	}
	if s.first {
		s.first, s.head = false, m.Head
	}
	c.learnEvictions(m.Evicted)
	c.merge(m.Records)
	if m.Next != "" {
		s.after = m.Next
		c.syncMore()
		return
	}
	c.sync = nil
	c.term, c.seq = s.head.Term, s.head.Seq
	c.maxTerm = max(c.maxTerm, c.term)
	c.ready = true
	c.drain()
	c.ackOwed = true // ack=all writes logged before we subscribed wait for us
	c.sendAck()
	if c.pushSynced {
		c.pushSynced = false
		if !(c.pulledBy == c.primary && c.pulledTerm == c.term) && c.push == nil {
			c.startPush(c.primary) // the primary keeps and logs what is newer
		}
	}
}

func (c *core) onLog(m LogBatch) {
	if c.role != RoleReplica || m.Batch.P != c.cfg.P || len(m.Batch.Entries) == 0 {
		return
	}
	if m.Batch.Entries[0].Term&(1<<termNodeBits-1) != termNode(c.primary) {
		return // another node's log: a primary our table does not name (a split)
	}
	if m.AckWanted {
		c.ackOwed = true
	}
	if c.pulledBy != c.primary {
		c.pulledBy = "" // another primary's writes: our copy is no longer what was pulled
	}
	for _, e := range m.Batch.Entries {
		if !c.onEntry(e) {
			return
		}
	}
	c.sendAck()
}

// onEntry applies one entry in order or keeps it for later; false: the rest
// of its batch is to be ignored (a sync started).
func (c *core) onEntry(e Entry) bool {
	switch {
	case c.sync != nil:
		c.pending[e.Seq] = e // the snapshot decides where the log resumes
		return true
	case e.Term < c.term:
		return true // an old primary's, fenced since: the new one has it
	case e.Term > c.term:
		// A term we saw nothing of: our copy may miss what the new
		// primary pulled in.
		c.maxTerm = max(c.maxTerm, e.Term)
		c.startSync()
		return false
	}
	switch {
	case e.Seq <= c.seq:
	case e.Seq == c.seq+1:
		_, _ = c.st.Apply(e.record())
		c.seq = e.Seq
		c.drain()
	default:
		c.pending[e.Seq] = e
		if len(c.pending) > c.cfg.LogSize {
			c.startSync() // too far behind for fetches
			return false
		}
		c.startFetch(0)
	}
	return true
}

// drain applies the pending entries that now follow in order, and forgets
// those of other terms or already applied.
func (c *core) drain() {
	defer c.applyEvictions()
	for s, e := range c.pending {
		if e.Term != c.term || s <= c.seq {
			delete(c.pending, s)
		}
	}
	for {
		e, ok := c.pending[c.seq+1]
		if !ok {
			return
		}
		delete(c.pending, e.Seq)
		_, _ = c.st.Apply(e.record())
		c.seq = e.Seq
	}
}

// sendAck tells the primary how far this replica applied, when an entry
// asked for it.
func (c *core) sendAck() {
	if !c.ackOwed || c.sync != nil || c.role != RoleReplica {
		return
	}
	c.ackOwed = false
	c.sendTo(c.primary, Ack{P: c.cfg.P, Term: c.term, Seq: c.seq, Node: c.cfg.Self})
}

// startFetch fetches the entries missing before the first pending one, or
// up to head when it is beyond.
func (c *core) startFetch(head uint64) {
	if c.fetch != nil || c.sync != nil || !c.live[c.primary] {
		return
	}
	last := head
	for s := range c.pending {
		if last == 0 || s-1 < last {
			last = s - 1
		}
	}
	if last <= c.seq {
		return
	}
	c.nextReq++
	c.fetch = &request{to: c.primary, id: c.nextReq, deadline: c.now + c.cfg.RequestTimeout}
	c.fetchAt = c.seq + 1
	c.sendTo(c.primary, FetchRequest{P: c.cfg.P, From: c.cfg.Self, Req: c.nextReq, Term: c.term, First: c.seq + 1, Last: last})
}

func (c *core) onFetchResponse(m FetchResponse) {
	if c.fetch == nil || c.fetch.id != m.Req || c.role != RoleReplica {
		return
	}
	c.fetch = nil
	switch {
	case m.Refused != "":
		return // the next tick looks again
	case m.Truncated && c.seq >= c.fetchAt:
		// The entries came by the log meanwhile (a late or repeated
		// batch), and the primary forgot them once we acknowledged them:
		// the answer is stale. Fetch what is still missing, if anything.
		c.startFetch(0)
		return
	case m.Truncated:
		c.startSync()
		return
	}
	for _, e := range m.Entries {
		if e.Term == c.term && e.Seq == c.seq+1 {
			_, _ = c.st.Apply(e.record())
			c.seq = e.Seq
		}
	}
	c.drain()
	c.sendAck()
	if len(c.pending) > 0 {
		c.startFetch(0)
	}
}

// onRepair pushes this replica's copy to the primary (which keeps what is
// newer) and then syncs the primary's.
func (c *core) onRepair() {
	if c.role != RoleReplica || !c.ready || c.push != nil {
		return
	}
	c.resync = true
	c.startPush(c.primary)
}

// ---- handing over ----

// becomeNone gives up any role; a copy held is kept until the owners hold
// it (onTick).
func (c *core) becomeNone() {
	if c.role != RoleNone {
		c.leave()
	}
	if c.push != nil && (len(c.owners) == 0 || c.push.to != c.owners[0]) {
		c.push = nil
	}
}

// startPush sends this node's copy to node to, chunk by chunk.
func (c *core) startPush(to string) {
	c.push = &chunked{request: request{to: to}, records: c.st.Records(c.cfg.P)}
	c.pushMore()
}

func (c *core) pushMore() {
	p := c.push
	if p.sent || !c.live[p.to] {
		return
	}
	req := PushRequest{P: c.cfg.P, From: c.cfg.Self}
	size, n := 0, 0
	for n < len(p.records) && size < c.cfg.ChunkBytes {
		req.Records = append(req.Records, entryOf(c.cfg.P, ID{}, p.records[n]))
		size += len(p.records[n].Key) + len(p.records[n].Value) + 32
		n++
	}
	req.Last = n == len(p.records)
	p.sent = true
	c.nextReq++
	req.Req = c.nextReq
	p.id, p.deadline = c.nextReq, c.now+c.cfg.RequestTimeout
	c.sendTo(p.to, req)
}

func (c *core) onPushResponse(m PushResponse) {
	p := c.push
	if p == nil || p.id != m.Req || m.From != p.to {
		return
	}
	p.sent = false
	if m.Refused != "" {
		return // the next tick sends it again
	}
	n := 0
	for size := 0; n < len(p.records) && size < c.cfg.ChunkBytes; n++ {
		size += len(p.records[n].Key) + len(p.records[n].Value) + 32
	}
	p.records = p.records[n:]
	if len(p.records) > 0 {
		c.pushMore()
		return
	}
	c.push = nil
	if c.role == RoleNone {
		c.handedTo, c.handedTerm, c.handedSeq = m.From, m.Head.Term, m.Head.Seq
	}
	if c.resync && c.role == RoleReplica {
		c.resync = false
		c.startSync()
	}
}

// handOff looks after a copy this node holds but does not own: it is
// offered to the primary unless the primary pulled it, and dropped once
// every owner says it holds the partition under the term that has it.
func (c *core) handOff() {
	if c.role != RoleNone || !c.holds || c.fence != nil || len(c.owners) == 0 {
		return
	}
	primary := c.owners[0]
	if primary == c.cfg.Self || slices.Contains(c.owners, c.cfg.Self) || !c.live[primary] {
		return
	}
	pc, ok := c.claims[primary]
	if !ok || pc.Role != RolePrimary || !pc.Ready {
		return // wait for a ready primary
	}
	if c.handedTo != primary || c.handedTerm != pc.Term {
		if c.push == nil {
			c.startPush(primary)
		}
		return
	}
	if c.keep || !c.ownersConfirm() {
		return
	}
	c.holds = false
	c.handedTo, c.handedTerm, c.handedSeq = "", 0, 0
	c.emit(dropCopy{})
}

// ownersConfirm reports whether the owners hold what this node handed
// over: every owner said, lately, that it holds the partition under the
// term that has our copy (the replicas at or past the push's head), and
// there are R of them, so that a view missing some servers does not leave
// a single copy.
func (c *core) ownersConfirm() bool {
	if len(c.owners) == 0 || c.handedTo != c.owners[0] {
		return false
	}
	pc, ok := c.claims[c.owners[0]]
	if !ok || pc.Term != c.handedTerm {
		return false
	}
	confirmed := 0
	for i, name := range c.owners {
		cl, ok := c.claims[name]
		if !ok || c.now-cl.Seen > c.cfg.ClaimLag || cl.Term != pc.Term || !cl.Ready {
			return false
		}
		if i == 0 && cl.Role == RolePrimary || i > 0 && cl.Role == RoleReplica && cl.Seq >= c.handedSeq {
			confirmed++
		}
	}
	return confirmed >= c.cfg.Replicas
}

// handedOver reports whether this node, not an owner, has nothing left to
// hand over: it holds no copy, or the owners confirm they hold it as they
// must before a copy is dropped.
func (c *core) handedOver() bool {
	if c.role != RoleNone || !c.holds {
		return true
	}
	return c.ownersConfirm()
}

// ---- time ----

// onTick retries what timed out or was refused, follows the primary's head,
// lifts a fence that is over and hands off a copy not owned.
func (c *core) onTick(m Tick) {
	c.now = m.Now
	c.claims, c.heard = m.Claims, m.Heard
	if c.claims == nil {
		c.claims = map[string]Claim{}
	}
	for _, cl := range c.claims {
		c.maxTerm = max(c.maxTerm, cl.Term)
	}
	c.retry(&c.push)
	if c.fence != nil && c.fenceOver() {
		c.fence = nil
		c.adopt()
	}
	switch {
	case c.pull != nil:
		c.addSources()
		for _, src := range c.pull.sources {
			if src.sent && c.now > src.deadline {
				src.sent = false
			}
		}
		c.pullMore()
	case c.serving():
		c.heardClaims()
		c.trimLog()
		c.tickPrimary()
	case c.role == RoleReplica:
		c.tickReplica()
	case c.role == RoleNone:
		c.handOff()
	}
}

// retry forgets a chunk in flight past its deadline and sends it again.
func (c *core) retry(pp **chunked) {
	p := *pp
	if p == nil {
		return
	}
	if p.sent && c.now > p.deadline {
		p.sent = false
	}
	if !p.sent {
		c.pushMore()
	}
}

// fenceOver reports whether the node that took the partition over let go:
// it left the live members, or said since that it does not lead it.
func (c *core) fenceOver() bool {
	f := c.fence
	if !c.live[f.by] {
		return true
	}
	if c.heard[f.by] <= f.at+c.cfg.ClaimLag {
		return false // nothing heard from it since it took over
	}
	cl := c.claims[f.by] // absent: it holds nothing
	return !(cl.Role == RolePrimary && cl.Term >= f.term)
}

// tickPrimary takes the partition over again when another node says it
// leads it under another term (a split healed, or peers that started
// apart): its copy may hold writes ours lacks, which we pull in before
// serving again. Claims heard before our term began plus their lag are
// stale: they may tell of a term we ended.
func (c *core) tickPrimary() {
	for _, name := range c.sortedClaimers() {
		cl := c.claims[name]
		if cl.Role == RolePrimary && cl.Term != c.term && cl.Seen > c.since+c.cfg.ClaimLag && c.live[name] {
			c.becomePrimary()
			return
		}
	}
}

// sortedClaimers returns the peers with a claim, by name.
func (c *core) sortedClaimers() []string {
	names := make([]string, 0, len(c.claims))
	for name := range c.claims {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func (c *core) tickReplica() {
	if s := c.sync; s != nil {
		if s.sent && c.now > s.deadline {
			s.sent = false
		}
		c.syncMore()
		return
	}
	if c.fetch != nil && c.now > c.fetch.deadline {
		c.fetch = nil
	}
	pc, ok := c.claims[c.primary]
	if !ok || pc.Role != RolePrimary || !pc.Ready {
		return
	}
	switch {
	case pc.Term > c.term:
		c.maxTerm = max(c.maxTerm, pc.Term)
		c.startSync() // a term we saw nothing of
	case pc.Term == c.term && pc.Seq > c.seq:
		c.startFetch(pc.Seq) // the last entries of a burst may be lost with nothing after them
	}
}
