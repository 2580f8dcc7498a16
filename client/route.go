package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// Routing: the client asks any node for the partition table (the table
// subject), and sends each operation to the node subject of its partition's
// primary (wire.Subjects.NodeBatch), so that it crosses one hop instead of
// two. The table only makes requests faster, never more correct: a node runs
// the operations it does not lead by forwarding them, so a stale table costs
// a hop, and a partition whose primary is unknown goes to the generic batch
// subject, which any node serves. A node subject with no responders (the
// node is gone) is routed around at once, the request is retried once on the
// generic subject, and the table is fetched again.
//
// A request already in flight to a node that is gone gets no reply: core
// NATS drops a request whose responder dies, and tells nobody. The router
// ends the wait of such requests (inFlight) as soon as it knows the node is
// gone: a request to its subject had no responders, or a table no longer
// lists it (peers mark a killed node dead within --dead-after). See
// Client.batch for what the caller then gets.

// DefaultTableRefresh is how often a client fetches the partition table again.
const DefaultTableRefresh = 2 * time.Second

// maxTableWait bounds one table request, so that Connect never waits long
// for a table it can do without.
const maxTableWait = 2 * time.Second

// tableReply is the JSON of the table subject (the node's TableReply): the
// fields routing needs.
type tableReply struct {
	Partitions int               `json:"partitions"` // P
	Owners     [][]string        `json:"owners"`     // per partition, names, primary first
	IDs        map[string]string `json:"ids"`        // live member name -> node ID
}

// routes is one partition table as the client routes by. Immutable once
// published.
type routes struct {
	partitions int             // P; 0 = no table: everything goes to generic
	generic    string          // the generic batch subject, served by any node
	dest       []string        // per partition: its primary's node batch subject, or generic
	live       map[string]bool // the node batch subjects of the table's live members; nil = no table yet
}

// destOf returns the subject of key's operations.
func (rt *routes) destOf(key string) string {
	if rt.partitions == 0 {
		return rt.generic
	}
	return rt.dest[partition.Of(key, rt.partitions)]
}

// newRoutes turns a table reply into routes. A partition with no owners, or
// whose primary has no known ID, goes to the generic subject; so does
// everything when the cluster is a single node, which the generic subject
// reaches as directly.
func newRoutes(subj wire.Subjects, tr *tableReply) (*routes, error) {
	if tr.Partitions < 1 || len(tr.Owners) != tr.Partitions {
		return nil, fmt.Errorf("%w: table of %d partitions with owners for %d", ErrProtocol, tr.Partitions, len(tr.Owners))
	}
	live := make(map[string]bool, len(tr.IDs))
	for _, id := range tr.IDs {
		if id != "" {
			live[subj.NodeBatch(id)] = true
		}
	}
	if len(tr.IDs) < 2 {
		return &routes{generic: subj.Batch(), live: live}, nil
	}
	rt := &routes{partitions: tr.Partitions, generic: subj.Batch(), dest: make([]string, tr.Partitions), live: live}
	for p, owners := range tr.Owners {
		rt.dest[p] = rt.generic
		if len(owners) == 0 {
			continue
		}
		if id := tr.IDs[owners[0]]; id != "" {
			rt.dest[p] = subj.NodeBatch(id)
		}
	}
	return rt, nil
}

// without returns rt with the partitions that go to any of gone sent to the
// generic subject instead; rt itself when none do.
func (rt *routes) without(gone map[string]time.Time) *routes {
	if len(gone) == 0 || rt.partitions == 0 {
		return rt
	}
	var out *routes
	for p, d := range rt.dest {
		if _, down := gone[d]; !down {
			continue
		}
		if out == nil {
			out = &routes{partitions: rt.partitions, generic: rt.generic, dest: append([]string(nil), rt.dest...), live: rt.live}
		}
		out.dest[p] = rt.generic
	}
	if out == nil {
		return rt
	}
	return out
}

// router keeps the client's routes fresh. Its loop (run) fetches the table
// on every tick and whenever a node subject fails; callers read the current
// routes through an atomic pointer, with no lock on the hot path.
type router struct {
	subj  wire.Subjects
	fetch func(ctx context.Context) ([]byte, error) // one table request
	hold  time.Duration                             // how long a failed node subject is routed around
	wait  time.Duration                             // bound of one table request

	cur  atomic.Pointer[routes] // what callers route by; never nil
	kick chan struct{}          // buffered 1: fetch the table now
	done chan struct{}          // closed when run returns

	mu       sync.Mutex
	base     *routes                            // the last table fetched, before gone is applied
	gone     map[string]time.Time               // node subjects that had no responders -> when
	inFlight map[string]context.CancelCauseFunc // node subject -> ends the wait of its requests in flight (see inFlightTo)
	alive    map[string]context.Context         // node subject -> the context those requests run under
	now      func() time.Time                   // the clock; time.Now outside tests
}

// errNodeGone is the cause of a request's end when its node is gone.
var errNodeGone = errors.New("client: node gone")

func newRouter(subj wire.Subjects, interval, wait time.Duration, fetch func(context.Context) ([]byte, error)) *router {
	r := &router{
		subj:  subj,
		fetch: fetch,
		hold:  interval,
		wait:  min(wait, maxTableWait),
		kick:  make(chan struct{}, 1),
		done:  make(chan struct{}),
		gone:  map[string]time.Time{},
		now:   time.Now,

		inFlight: map[string]context.CancelCauseFunc{},
		alive:    map[string]context.Context{},
	}
	r.base = &routes{generic: subj.Batch()}
	r.cur.Store(r.base)
	return r
}

// destOf returns the subject of key's operations under the current routes.
func (r *router) destOf(key string) string { return r.cur.Load().destOf(key) }

// routes returns the current routes, for a call that routes many keys.
func (r *router) routes() *routes { return r.cur.Load() }

// run refreshes the table on every tick and on every kick until ctx ends.
func (r *router) run(ctx context.Context, tick <-chan time.Time) {
	defer close(r.done)
	for {
		select {
		case <-tick: // periodic refresh
		case <-r.kick: // a node subject failed: the table is stale
		case <-ctx.Done(): // the client is closing
			return
		}
		_ = r.refresh(ctx)
	}
}

// refresh fetches the table and routes by it. On failure the current routes
// stay: any node still answers every request, only slower.
func (r *router) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.wait)
	defer cancel()
	data, err := r.fetch(ctx)
	if err != nil {
		return err
	}
	var tr tableReply
	if err := json.Unmarshal(data, &tr); err != nil {
		return fmt.Errorf("%w: table reply: %w", ErrProtocol, err)
	}
	rt, err := newRoutes(r.subj, &tr)
	if err != nil {
		return err
	}
	r.install(rt)
	return nil
}

// install routes by rt, minus the node subjects that failed less than hold
// ago.
func (r *router) install(rt *routes) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for s, at := range r.gone {
		if now.Sub(at) >= r.hold {
			delete(r.gone, s)
		}
	}
	r.base = rt
	r.cur.Store(rt.without(r.gone))
	for s := range r.alive {
		if !rt.live[s] {
			r.endInFlight(s) // dead or left in the cluster's view
		}
	}
}

// nodeGone routes around subject, a node subject that had no responders,
// and asks run for a fresh table.
func (r *router) nodeGone(subject string) {
	r.mu.Lock()
	r.gone[subject] = r.now()
	r.cur.Store(r.base.without(r.gone))
	r.endInFlight(subject)
	r.mu.Unlock()
	r.stale()
}

// inFlightTo returns the context a request to node subject runs under: it
// is cancelled, with cause errNodeGone, once the router knows the node is
// gone (nodeGone, or a table without it). Such a request would never be
// answered.
func (r *router) inFlightTo(subject string) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx, ok := r.alive[subject]
	if !ok {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(context.Background())
		r.alive[subject], r.inFlight[subject] = ctx, cancel
	}
	return ctx
}

// endInFlight ends the wait of the requests in flight to subject, after
// goneGrace. Called with r.mu held.
func (r *router) endInFlight(subject string) {
	if cancel, ok := r.inFlight[subject]; ok {
		time.AfterFunc(goneGrace, func() { cancel(errNodeGone) })
		delete(r.inFlight, subject)
		delete(r.alive, subject)
	}
}

// goneGrace is how long requests in flight to a node known gone still wait:
// those sent after its subscription went away get their "no responders"
// from the client's own server within a round trip, and are then sent again
// on the generic subject (Client.batch); only the others were lost with
// the node. Far above a round trip to the server.
const goneGrace = time.Second

// stale asks run for a fresh table; requests made meanwhile are merged.
func (r *router) stale() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}
