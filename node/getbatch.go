package node

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"math/rand/v2"

	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// A batch of plain gets (no TTL), every key led by this node, read in one
// pass: the keys go to the store together (store.GetMany: each shard's
// lock taken once, the lookups' cache misses overlapped), the values land
// in one buffer that the reply is encoded from, and the loaders are asked
// about the misses only — a batch in which every key hits asks nothing.
// A miss that a loader may serve is loaded as a single get's would be
// (load.go), the batch's loads at once, on a goroutine of its own so that
// the subscription keeps serving meanwhile.
//
// This path runs while no load, negative entry or refresh schedule is
// known (loads.known is 0: a hit then has nothing to refresh, and a miss
// nothing to join or answer from the table) and no ack=all write waits
// for a replica; otherwise the batch takes the per-key path (readBatch,
// executeBatch).

// getBatch is the working memory of one batch of gets, pooled.
type getBatch struct {
	keys    []string      // the keys that passed checkKey, in batch order; they share the request's bytes (handleBatch): what keeps one copies it
	at      []int         // at[j] is the position in the batch of keys[j]
	entries []store.Entry // the store's answer for keys[j]; Version 0 = a miss
	values  []byte        // the hits' values, which entries[j].Value point into
	loads   []int         // the j of each miss a loader may serve
}

var getBatches = sync.Pool{New: func() any { return new(getBatch) }}

// maxPooledValues is the largest values buffer a getBatch keeps in the pool.
const maxPooledValues = 1 << 20

// release gives g back to its pool, holding on to no key or value.
func (g *getBatch) release() {
	if cap(g.keys) > maxPooledOps || cap(g.values) > maxPooledValues {
		return
	}
	clear(g.keys)
	clear(g.entries)
	g.keys, g.at, g.entries, g.values, g.loads = g.keys[:0], g.at[:0], g.entries[:0], g.values[:0], g.loads[:0]
	getBatches.Put(g)
}

// batchReadable reports whether a batch of ops may take the one-pass read:
// plain gets of keys this node leads (local), no load state known here and
// no ack=all write waiting for its replicas.
func (n *Node) batchReadable(ops []wire.Request, local bool) bool {
	return local && plainGets(ops) && n.loads.known.Load() == 0 && (n.repl == nil || !n.repl.Unacked())
}

// answerGets answers a batch that batchReadable accepted, and gives br back
// to its pool.
func (n *Node) answerGets(req micro.Request, br *wire.BatchRequest) {
	start := time.Now()
	ops := br.Ops
	results := takeResults(len(ops))
	g := getBatches.Get().(*getBatch)
	for i := range ops {
		if err := n.checkKey(ops[i].Key); err != nil {
			results[i] = errResult(err)
			continue
		}
		g.keys = append(g.keys, ops[i].Key)
		g.at = append(g.at, i)
	}
	g.entries = slices.Grow(g.entries[:0], len(g.keys))[:len(g.keys)]
	g.values = n.store.GetMany(g.keys, g.entries, g.values[:0])
	if n.repl != nil && n.repl.Unacked() {
		n.barrierReads(g, results)
	}
	n.hot.observeMany(g.keys)
	for j, key := range g.keys {
		i, e := g.at[j], &g.entries[j]
		switch {
		case results[i].Code != 0: // failed at the barrier
		case e.Version != 0:
			results[i] = wire.Result{Code: wire.CodeOK, Value: e.Value, Version: e.Version, Flags: e.Flags, Expires: unixMilli(e.Expires)}
		case n.loaderListens(key):
			g.loads = append(g.loads, j)
		default:
			results[i] = errResult(explain(store.ErrNotFound, key, false, 0))
		}
	}
	finish := func(req micro.Request) {
		n.metrics.doneBatch(opGet, start, results)
		n.respondBatch(req, results)
		releaseResults(results)
		g.release()
		releaseBatchRequest(br)
	}
	if len(g.loads) == 0 {
		finish(req)
		return
	}
	d := n.detach(req)
	n.async.Go(func() {
		n.loadMisses(g, results)
		finish(d)
	})
}

// barrierReads is answerGets' rare case: an ack=all write began to wait for
// its replicas while the batch was read, so a value read may not be on a
// replica yet. Each key is read again once no such write of it waits (the
// store counts those keys' reads twice).
func (n *Node) barrierReads(g *getBatch, results []wire.Result) {
	for j, key := range g.keys {
		if err := n.repl.ReadBarrier(partition.Of(key, n.cfg.Partitions), key, n.ackTimeout()); err != nil {
			results[g.at[j]] = errResult(errWaitsForReplicas(key))
			continue
		}
		e, err := n.store.Get(key)
		if err != nil {
			e = store.Entry{Key: key}
		}
		g.entries[j] = e
	}
}

// loadMisses answers the misses of g that a loader may serve, as a get's
// miss at its primary is answered (readThrough): it first starts every
// load, so that they run at once, then waits for each.
func (n *Node) loadMisses(g *getBatch, results []wire.Result) {
	l := n.loads
	for _, j := range g.loads {
		g.keys[j] = strings.Clone(g.keys[j]) // the load table and the load keep it
		key := g.keys[j]
		l.mu.Lock()
		act, f := l.table.miss(key, time.Now(), n.loaderListens(key))
		l.known.Store(int64(l.table.size()))
		l.mu.Unlock()
		if act == missStart {
			n.startLoad(key, f)
		}
	}
	for _, j := range g.loads {
		key := g.keys[j]
		e, err := n.readThrough(key, store.ErrNotFound)
		if err != nil {
			results[g.at[j]] = errResult(explain(err, key, false, 0))
			continue
		}
		results[g.at[j]] = wire.Result{Code: wire.CodeOK, Value: e.Value, Version: e.Version, Flags: e.Flags, Expires: unixMilli(e.Expires)}
	}
}

// errWaitsForReplicas is a read's answer when an ack=all write of its key
// waited for its replicas for longer than the ack timeout (as find's).
func errWaitsForReplicas(key string) error {
	return &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("key %q: a write of it waits for its replicas; retry shortly", key)}
}

// observeMany is observe of each key, with the same odds for each (one in
// hotSampleEvery, drawn independently), for a batch: one random draw per
// sixteen keys (four bits each) and the lock taken once for the keys drawn.
func (h *hotKeys) observeMany(keys []string) {
	var drawn [maxDrawn]int
	picked := 0
	var r uint64
	for j := range keys {
		if j%(64/hotSampleBits) == 0 {
			r = rand.Uint64()
		}
		if r&(hotSampleEvery-1) == 0 {
			if picked == len(drawn) { // many drawn in one batch: count these, go on
				h.count(keys, drawn[:])
				picked = 0
			}
			drawn[picked] = j
			picked++
		}
		r >>= hotSampleBits
	}
	if picked > 0 {
		h.count(keys, drawn[:picked])
	}
}

// hotSampleBits is log2(hotSampleEvery): the random bits a key's draw takes.
const hotSampleBits = 4

// maxDrawn is how many drawn keys observeMany counts under one hold of the
// lock.
const maxDrawn = 32

// count adds one sampled read of keys[j] for each j of drawn.
func (h *hotKeys) count(keys []string, drawn []int) {
	h.mu.Lock()
	for _, j := range drawn {
		h.sum.Observe(strings.Clone(keys[j]), 1) // a new key stays in the summary: not the request's bytes
		h.sampled++
		if h.sampled%1024 == 0 {
			h.halveIfDue(time.Now())
		}
	}
	h.mu.Unlock()
}
