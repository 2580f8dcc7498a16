package replicator

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/store"
)

// role is what this node is for a partition.
type role uint8

const (
	roleNone    role = iota // holds no copy (or one being handed over)
	rolePrimary             // leads it: takes its writes and publishes its log
	roleReplica             // holds a copy and applies the primary's log
)

func (r role) String() string {
	switch r {
	case rolePrimary:
		return "primary"
	case roleReplica:
		return "replica"
	}
	return "none"
}

// part is one partition's replication state on this node. Everything in it
// is guarded by mu; writes to the partition hold mu while they apply and
// publish, so that IDs are assigned and published in order.
type part struct {
	p  int
	mu sync.Mutex

	role  role
	gen   uint64 // bumped by every role change: background work of an older generation gives up
	ready bool   // primary: synced, takes requests; replica: synced with its primary
	// serving mirrors role == rolePrimary && ready for readers without mu.
	serving atomic.Bool
	// mutations counts the writes to the partition made through the
	// replicator (logged writes, merged records): a snapshot read is
	// current while it has not changed.
	mutations atomic.Uint64
	// held mirrors holds for the drop pass, which reads it key by key.
	held  atomic.Bool
	holds bool   // this node may hold data of the partition (it owned it since its last drop); set with setHolds
	term  uint64 // the primary term the state follows
	seq   uint64 // primary: last ID assigned; replica: last entry applied in order

	// fenced: another node took the partition over while this node's table
	// still named it primary; it does not lead it again before then.
	fenced   time.Time
	fencedBy string // the node that took over
	// handingOver: a handover of this node's copy runs.
	handingOver bool

	// readyCh is closed when ready turns true; replaced when it turns false.
	readyCh chan struct{}

	// Primary.
	emitted  []store.Record     // the records of the Write running
	emitFn   func(store.Record) // pt.emit, made once
	log      ring               // the last entries of the term, for gap fetches
	replicas []string           // the other owners, whose acks ack=all writes wait for
	acked    map[string]uint64  // replica name -> highest seq it acknowledged in this term
	waiters  []*waiter          // ack=all writes waiting for their replicas

	// Replica.
	primary  string             // name of the primary
	sub      *nats.Subscription // the partition's log subject
	pending  map[uint64]Entry   // entries after a gap, by seq (this term's only)
	fetching bool               // a gap fetch runs
	syncing  bool               // a snapshot sync runs
	ackTo    string             // reply subject of the last entry that asked for an ack
	head     ID                 // the primary's last announced head
}

func newPart(p, logSize, logBytes int) *part {
	pt := &part{p: p, log: newRing(logSize, logBytes), readyCh: make(chan struct{}), acked: map[string]uint64{}, pending: map[uint64]Entry{}}
	pt.emitFn = pt.emit
	return pt
}

// setHolds records whether this node may hold data of the partition. pt.mu
// is held.
func (pt *part) setHolds(h bool) {
	pt.holds = h
	pt.held.Store(h)
}

// emit collects a record of the Write running. pt.mu is held.
func (pt *part) emit(rec store.Record) { pt.emitted = append(pt.emitted, rec) }

// waiter is an ack=all write waiting until every replica applied seq.
type waiter struct {
	seq  uint64
	done chan error // receives once
}

// setReady records readiness and wakes AwaitReady.
func (pt *part) setReady(ready bool) {
	switch {
	case ready && !pt.ready:
		close(pt.readyCh)
	case !ready && pt.ready:
		pt.readyCh = make(chan struct{})
	}
	pt.ready = ready
	pt.serving.Store(ready && pt.role == rolePrimary)
}

// leave ends the current role: waiting writes fail with err, the log
// subscription ends, and background work of the old role gives up.
func (pt *part) leave(err error) {
	pt.gen++
	pt.setReady(false)
	for _, w := range pt.waiters {
		w.done <- err
	}
	pt.waiters = nil
	if pt.sub != nil {
		_ = pt.sub.Unsubscribe()
		pt.sub = nil
	}
	clear(pt.pending)
	clear(pt.acked)
	pt.fetching, pt.syncing, pt.ackTo = false, false, ""
	pt.log.reset()
	pt.replicas = nil
	pt.role = roleNone
	pt.handingOver = false
}

// release wakes the waiters whose entry every replica has applied.
func (pt *part) release() {
	kept := pt.waiters[:0]
	for _, w := range pt.waiters {
		if pt.allAcked(w.seq) {
			w.done <- nil
			continue
		}
		kept = append(kept, w)
	}
	clear(pt.waiters[len(kept):])
	pt.waiters = kept
}

func (pt *part) allAcked(seq uint64) bool {
	for _, r := range pt.replicas {
		if pt.acked[r] < seq {
			return false
		}
	}
	return true
}

// ring holds the last entries of a term, in seq order: at most size of them
// and about maxBytes of keys and values, since the entries keep their values
// alive after the store evicted or replaced them. It allocates as it fills.
type ring struct {
	entries  []Entry // seqs entries[0].Seq ..
	bytes    int     // their keys and values
	size     int
	maxBytes int
}

func newRing(size, maxBytes int) ring { return ring{size: size, maxBytes: maxBytes} }

func (g *ring) reset() { g.entries, g.bytes = nil, 0 }

// add appends e, whose seq follows the newest, forgetting the oldest entries
// as the limits require.
func (g *ring) add(e Entry) {
	size := len(e.Key) + len(e.Value)
	drop := 0
	for drop < len(g.entries) && (len(g.entries)-drop >= g.size || g.bytes+size > g.maxBytes) {
		g.bytes -= len(g.entries[drop].Key) + len(g.entries[drop].Value)
		g.entries[drop] = Entry{} // let go of its value
		drop++
	}
	g.entries = append(g.entries[drop:], e)
	g.bytes += size
}

// slice returns the entries first..last it holds, or ok=false when first is
// no longer held.
func (g *ring) slice(first, last uint64) (out []Entry, ok bool) {
	if len(g.entries) == 0 || first < g.entries[0].Seq {
		return nil, false
	}
	i := int(first - g.entries[0].Seq)
	for ; i < len(g.entries) && g.entries[i].Seq <= last; i++ {
		out = append(out, g.entries[i])
	}
	return out, true
}
