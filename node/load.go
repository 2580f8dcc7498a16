package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// Read-through loaders (docs/PROTOCOL.md, "Loaders"). A loader is any NATS
// responder on <prefix>.load.<key>. When a get misses at the key's primary
// and a loader listens, the primary asks it once, however many gets wait
// (single-flight: every read of a key runs at its primary, so one flight
// there is one load cluster-wide); the value is stored through the
// replicator like a set, with CAS "only if absent" so that a set made
// meanwhile wins, and answered to every waiting get. A loader's 404 is
// remembered for --negative-ttl; a timeout or an error is a 503 to the
// waiting gets and stores nothing.
//
// Whether a loader listens is asked of the embedded server's subscription
// list (bus.Interest), which costs a fraction of a microsecond and sends
// nothing: a miss with no loader costs what it did before. With an external
// NATS (--nats) the node cannot see the subscriptions: it asks, and "no
// responders" comes back in one round trip to the server.

// Headers of a loader's reply.
const (
	hdrRefresh = "Roost-Refresh" // loader reply: reload in the background when read after this age
)

// loads is a node's read-through state: the pure table behind a lock, and
// counters for /metrics and the dashboard.
type loads struct {
	mu      sync.Mutex
	table   *loadTable   // guarded by mu
	known   atomic.Int64 // table.size() after the last change: 0 = a miss has nothing to look up
	pruned  time.Time    // guarded by mu: when expired entries were last dropped
	loadTTL atomic.Int64 // nanoseconds: the TTL of a loaded value whose loader gave none (--load-ttl, or a runtime rule)

	running sync.WaitGroup // loads in flight, for Stop

	// Counters since start.
	started      atomic.Uint64 // loader requests sent (refreshes included)
	loaded       atomic.Uint64 // values loaded and stored
	notFound     atomic.Uint64 // loader 404s
	failed       atomic.Uint64 // timeouts, loader errors, values the store refused
	noLoader     atomic.Uint64 // asked, and nobody answered ("no responders")
	refreshes    atomic.Uint64 // refresh-ahead reloads started
	joined       atomic.Uint64 // gets that waited for a load another get started
	negativeHits atomic.Uint64 // gets answered 404 from a negative entry
	latencyNanos atomic.Uint64 // total time of the loads that ended, for the dashboard's mean
	latency      prometheus.Histogram
}

// pruneEvery is how often a miss also drops the table's expired entries.
const pruneEvery = 10 * time.Second

func newLoads(loadTTL, negativeTTL time.Duration, reg *prometheus.Registry) *loads {
	l := &loads{table: newLoadTable(negativeTTL)}
	l.loadTTL.Store(int64(loadTTL))
	l.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "roost",
		Name:      "load_duration_seconds",
		Help:      "Time a loader took to answer a load this node asked for as a key's primary (value, 404 or error; timeouts count as --load-timeout).",
		Buckets:   []float64{100e-6, 500e-6, 1e-3, 5e-3, 10e-3, 50e-3, 100e-3, 500e-3, 1, 2, 5},
	})
	reg.MustRegister(l.latency, &loadCollector{l: l})
	return l
}

// setTTLs changes --load-ttl and --negative-ttl at run time (a runtime
// config rule): the next load and the next 404 use them.
func (l *loads) setTTLs(loadTTL, negativeTTL time.Duration) {
	l.loadTTL.Store(int64(loadTTL))
	l.mu.Lock()
	l.table.negativeTTL = negativeTTL
	l.mu.Unlock()
}

// ttls are the load TTL and negative TTL in force.
func (l *loads) ttls() (loadTTL, negativeTTL time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Duration(l.loadTTL.Load()), l.table.negativeTTL
}

// loaded is a loader's answer, parsed.
type loaded struct {
	value []byte
	flags uint64
	ttl   time.Duration
	every time.Duration // Roost-Refresh; 0 = none
}

// errNoLoader is a miss no loader answered for.
var errNoLoader = errors.New("no loader")

// afterRead is what a get at key's primary does once the store answered:
// it counts the read for the hot keys (hotkeys.go), tries a loader on a
// miss, and refreshes ahead on a hit.
func (n *Node) afterRead(key string, e store.Entry, err error) (store.Entry, error) {
	n.hot.observe(key)
	if err != nil {
		return n.readThrough(key, err)
	}
	n.afterHit(key, &e)
	return e, nil
}

// readThrough is a get's miss at key's primary: a plain 404 unless a loader
// listens or a load or negative entry of key is known. It may wait for a
// load, up to --load-timeout and the store write after it.
func (n *Node) readThrough(key string, miss error) (store.Entry, error) {
	if !errors.Is(miss, store.ErrNotFound) {
		return store.Entry{}, miss
	}
	l := n.loads
	listening := n.loaderListens(key)
	if !listening && l.known.Load() == 0 {
		return store.Entry{}, miss
	}
	now := time.Now()
	l.mu.Lock()
	if now.Sub(l.pruned) > pruneEvery {
		l.table.prune(now)
		l.pruned = now
	}
	act, f := l.table.miss(key, now, listening)
	l.known.Store(int64(l.table.size()))
	l.mu.Unlock()
	switch act {
	case missNegative:
		l.negativeHits.Add(1)
		return store.Entry{}, errLoaderNotFound(key)
	case missPlain:
		return store.Entry{}, miss
	case missStart:
		n.startLoad(key, f)
	case missJoin:
		l.joined.Add(1)
	}
	<-f.done
	if errors.Is(f.err, errNoLoader) {
		return store.Entry{}, miss
	}
	return f.entry, f.err
}

// afterHit is a get's hit at key's primary: a key loaded with
// Roost-Refresh whose refresh is due is reloaded in the background while
// the read answers the value it found.
func (n *Node) afterHit(key string, e *store.Entry) {
	l := n.loads
	if l.known.Load() == 0 {
		return
	}
	l.mu.Lock()
	f := l.table.hit(key, e.Version, time.Now())
	l.known.Store(int64(l.table.size()))
	l.mu.Unlock()
	if f != nil {
		l.refreshes.Add(1)
		n.startLoad(key, f)
	}
}

// forgetLoad drops key's negative entry and refresh schedule: a set or
// delete of it runs at its primary.
func (n *Node) forgetLoad(key string) {
	l := n.loads
	if l.known.Load() == 0 {
		return
	}
	l.mu.Lock()
	l.table.forget(key)
	l.known.Store(int64(l.table.size()))
	l.mu.Unlock()
}

// loaderListens reports whether a loader may listen for key: false only
// when the embedded server knows nobody subscribes to its load subject.
func (n *Node) loaderListens(key string) bool {
	base := n.subj.LoadPattern("")
	listens, known := n.bus.LoadInterest(n.subj.Load(key), n.subj.LoadProbe(key), base[:len(base)-1])
	return listens || !known
}

// mayLoad reports whether a get of key may wait for a load: then a handler
// that runs on its subscription's goroutine answers from a goroutine of
// its own, so that the subscription keeps serving meanwhile.
func (n *Node) mayLoad(key string) bool {
	if n.loads.known.Load() != 0 {
		return true
	}
	if n.bus.Interest(n.subj.Load(key)) == 0 {
		return false // nothing subscribes to key's load subject: the common case, one lookup
	}
	return n.loaderListens(key) // someone does (-1: cannot tell): a loader, or an observer?
}

// mayLoadAny is mayLoad for the gets among ops. It builds their load
// subjects in one buffer, sized first so that it never moves: a batch of
// gets costs one allocation, not one per key (each subject's bytes are
// written once and never changed, so the strings over them stay valid).
func (n *Node) mayLoadAny(ops []wire.Request) bool {
	size, gets := 0, 0
	base := n.subj.LoadPattern("")
	base = base[:len(base)-1] // "<prefix>.load."
	probe := n.subj.LoadProbeBase()
	for i := range ops {
		if ops[i].Op == wire.OpGet {
			size += len(base) + len(probe) + 2*len(ops[i].Key)
			gets++
		}
	}
	if gets == 0 {
		return false
	}
	if n.loads.known.Load() != 0 {
		return true
	}
	buf := make([]byte, 0, size)
	for i := range ops {
		if ops[i].Op != wire.OpGet {
			continue
		}
		start := len(buf)
		buf = append(append(buf, base...), ops[i].Key...)
		mid := len(buf)
		buf = append(append(buf, probe...), ops[i].Key...)
		subject, probeSubject := unsafe.String(&buf[start], mid-start), unsafe.String(&buf[mid], len(buf)-mid)
		if listens, known := n.bus.LoadInterest(subject, probeSubject, base); listens || !known {
			return true
		}
	}
	return false
}

// prefetchLoads starts, without waiting, the loads of the gets among ops
// that miss here as their primary: a batch's gets then run in order as
// before, each joining its load, but the loads overlap instead of running
// one after another. Order within the batch is kept: a get still waits for
// its own load before the next operation runs, and a load only stores its
// value if the key is still absent by then.
func (n *Node) prefetchLoads(ops []wire.Request) {
	l := n.loads
	for i := range ops {
		op := &ops[i]
		if op.Op != wire.OpGet || op.TTL != 0 {
			continue // a get with a TTL touches: a write, never loaded
		}
		if _, local := n.locate(op.Key); !local || n.checkKey(op.Key) != nil {
			continue
		}
		if _, err := n.store.Get(op.Key); err == nil {
			continue
		}
		listening := n.loaderListens(op.Key)
		if !listening && l.known.Load() == 0 {
			continue
		}
		l.mu.Lock()
		act, f := l.table.miss(op.Key, time.Now(), listening)
		l.known.Store(int64(l.table.size()))
		l.mu.Unlock()
		if act == missStart {
			n.startLoad(op.Key, f)
		}
	}
}

// startLoad runs the load f of key on a goroutine of its own: it asks the
// loader, stores the value, settles the table and wakes f's waiters.
func (n *Node) startLoad(key string, f *flight) {
	l := n.loads
	l.running.Add(1)
	go func() {
		defer l.running.Done()
		if !f.refresh {
			// A get that missed just before the previous load of key stored
			// its value, and took the table's lock just after that load
			// left it, starts this one: the store has the answer.
			if e, err := n.store.Get(key); err == nil {
				f.entry = e
				n.endLoad(key, f, loadSkipped, 0, time.Time{})
				return
			}
		}
		l.started.Add(1)
		start := time.Now()
		ld, err := n.askLoader(key)
		took := time.Since(start)
		l.latency.Observe(took.Seconds())
		l.latencyNanos.Add(uint64(took))
		out := loadFailed
		var expires time.Time
		switch {
		case err == nil:
			f.entry, f.err = n.storeLoaded(key, ld, f)
			if f.err == nil {
				out = loadedValue
				l.loaded.Add(1)
				if f.entry.Expires != 0 {
					expires = time.Unix(0, f.entry.Expires)
				}
			} else {
				l.failed.Add(1)
			}
		case errors.Is(err, errNoLoader):
			out, f.err = loadNoLoader, err
			l.noLoader.Add(1)
		case codeOf(err) == wire.CodeNotFound:
			out, f.err = loadNotFound, err
			l.notFound.Add(1)
		default:
			f.err = err
			l.failed.Add(1)
			n.log.Warn("loader failed", "key", key, "err", err)
		}
		n.endLoad(key, f, out, ld.every, expires)
	}()
}

// endLoad settles the table once f, the load of key, has its result, and
// wakes f's waiters.
func (n *Node) endLoad(key string, f *flight, out loadOutcome, every time.Duration, expires time.Time) {
	l := n.loads
	l.mu.Lock()
	l.table.finish(key, f, out, every, expires, time.Now())
	l.known.Store(int64(l.table.size()))
	l.mu.Unlock()
	close(f.done)
}

// askLoader requests key's value from its loader, within --load-timeout.
func (n *Node) askLoader(key string) (loaded, error) {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.LoadTimeout)
	defer cancel()
	resp, err := n.bus.Conn().RequestWithContext(ctx, n.subj.Load(key), nil)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return loaded{}, errNoLoader
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return loaded{}, &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("key %q: its loader did not answer within %s (--load-timeout)", key, n.cfg.LoadTimeout)}
	case err != nil:
		return loaded{}, &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("key %q: asking its loader: %v", key, err)}
	}
	loadTTL, _ := n.loads.ttls()
	return parseLoaderReply(key, resp, loadTTL, n.cfg.MaxValue)
}

// parseLoaderReply reads a loader's reply: a micro 404 is "no such key",
// any other error code a loader error (503 to the callers), and a value
// must fit --max-value with valid Roost-TTL, Roost-Flags and Roost-Refresh
// headers. defaultTTL applies when the reply has no Roost-TTL.
func parseLoaderReply(key string, resp *nats.Msg, defaultTTL time.Duration, maxValue int64) (loaded, error) {
	fail := func(format string, args ...any) (loaded, error) {
		return loaded{}, &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("key %q: loader error: ", key) + fmt.Sprintf(format, args...)}
	}
	if code := resp.Header.Get(micro.ErrorCodeHeader); code != "" {
		if strings.TrimSpace(code) == strconv.Itoa(wire.CodeNotFound) {
			return loaded{}, errLoaderNotFound(key)
		}
		return fail("%s (code %s)", resp.Header.Get(micro.ErrorHeader), code)
	}
	ld := loaded{value: resp.Data, ttl: defaultTTL}
	if int64(len(ld.value)) > maxValue {
		return fail("value of %d bytes is over the limit of %d (--max-value)", len(ld.value), maxValue)
	}
	if ld.value == nil {
		ld.value = []byte{}
	}
	var err error
	if v := resp.Header.Get(hdrTTL); v != "" {
		if ld.ttl, err = ParseTTL(v); err != nil {
			return fail("%s: %v", hdrTTL, err)
		}
	}
	if v := resp.Header.Get(hdrFlags); v != "" {
		if ld.flags, err = strconv.ParseUint(strings.TrimSpace(v), 10, 64); err != nil {
			return fail("bad %s %q: want an unsigned decimal integer", hdrFlags, v)
		}
	}
	if v := resp.Header.Get(hdrRefresh); v != "" {
		if ld.every, err = ParseTTL(v); err != nil {
			return fail("%s: %v", hdrRefresh, err)
		}
	}
	return ld, nil
}

// LoaderSaidNotFound ends the message of a 404 that a loader gave (or a
// negative entry remembers): a plain miss, with no loader listening, says
// only `key "k" not found`. `roost get --load` tells the two apart by it.
const LoaderSaidNotFound = "its loader answered 404"

// errLoaderNotFound is the 404 of a key its loader said does not exist.
func errLoaderNotFound(key string) error {
	return &apiError{code: wire.CodeNotFound, msg: fmt.Sprintf("key %q not found: %s", key, LoaderSaidNotFound)}
}

// storeLoaded writes a loaded value as a set through the replicator:
// "only if absent" for a load after a miss, "only at the version read" for
// a refresh, so that a write made while the loader worked wins. When one
// did, the key's value now is the answer.
func (n *Node) storeLoaded(key string, ld loaded, f *flight) (store.Entry, error) {
	p := partition.Of(key, n.cfg.Partitions)
	cas := uint64(0)
	if f.refresh {
		cas = f.version
	}
	for {
		sr := &store.SetRequest{Key: key, Value: ld.value, Flags: ld.flags, TTL: ld.ttl, CAS: cas, CheckCAS: true}
		res := make([]replicator.OpResult, 1)
		pw, err := n.submit(p, wire.AckPrimary, []replicator.Op{{Set: sr}}, res)
		if err == nil {
			err = pw.Wait()
		}
		if err != nil {
			return store.Entry{}, n.replicationError(p, err)
		}
		switch {
		case res[0].Err == nil:
			e := res[0].Entry
			e.Key, e.Value, e.Flags = key, ld.value, ld.flags
			return e, nil
		case !errors.Is(res[0].Err, store.ErrCASMismatch):
			return store.Entry{}, explain(res[0].Err, key, false, 0)
		}
		if e, err := n.store.Get(key); err == nil {
			return e, nil // written meanwhile: that value wins
		}
		if cas == 0 {
			return store.Entry{}, &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("key %q changed while its loader answered; retry", key)}
		}
		cas = 0 // a refresh of a key that went away meanwhile: store it as a load
	}
}

// awaitLoads lets the loads in flight end before the node stops, for at
// most wait.
func (n *Node) awaitLoads(wait time.Duration) {
	done := make(chan struct{})
	go func() {
		n.loads.running.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(wait):
		n.log.Warn("stopping with loads still in flight", "waited", wait)
	}
}

// LoadStats are a node's read-through counters since it started.
type LoadStats struct {
	Started      uint64  `json:"started"`       // loader requests sent, refreshes included
	Loaded       uint64  `json:"loaded"`        // values loaded and stored
	NotFound     uint64  `json:"not_found"`     // loader 404s
	Failed       uint64  `json:"failed"`        // timeouts, loader errors, values the store refused
	NoLoader     uint64  `json:"no_loader"`     // asked, and nobody answered
	Refreshes    uint64  `json:"refreshes"`     // refresh-ahead reloads
	Joined       uint64  `json:"joined"`        // gets that waited for a load another get started
	NegativeHits uint64  `json:"negative_hits"` // gets answered 404 from a negative entry
	MeanSeconds  float64 `json:"mean_seconds"`  // mean time a loader took to answer
}

// LoadStats returns the node's read-through counters.
func (n *Node) LoadStats() LoadStats {
	l := n.loads
	s := LoadStats{
		Started: l.started.Load(), Loaded: l.loaded.Load(), NotFound: l.notFound.Load(), Failed: l.failed.Load(),
		NoLoader: l.noLoader.Load(), Refreshes: l.refreshes.Load(), Joined: l.joined.Load(), NegativeHits: l.negativeHits.Load(),
	}
	if ended := s.Loaded + s.NotFound + s.Failed + s.NoLoader; ended > 0 {
		s.MeanSeconds = time.Duration(l.latencyNanos.Load() / ended).Seconds()
	}
	return s
}

// loadCollector reads the counters at scrape time.
type loadCollector struct{ l *loads }

var (
	descLoads = prometheus.NewDesc("roost_loads_total",
		"Loads this node asked of loaders as a key's primary, by result (loaded, not_found, failed, no_loader).", []string{"result"}, nil)
	descLoadRefreshes = prometheus.NewDesc("roost_load_refreshes_total", "Refresh-ahead reloads started (Roost-Refresh).", nil, nil)
	descLoadJoined    = prometheus.NewDesc("roost_load_joined_total", "Gets that waited for a load of their key another get had started (single-flight).", nil, nil)
	descNegativeHits  = prometheus.NewDesc("roost_load_negative_hits_total", "Gets answered 404 from a negative entry (the loader's 404, within --negative-ttl).", nil, nil)
)

func (c *loadCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLoads, descLoadRefreshes, descLoadJoined, descNegativeHits} {
		ch <- d
	}
}

func (c *loadCollector) Collect(ch chan<- prometheus.Metric) {
	l := c.l
	for _, r := range []struct {
		name string
		v    uint64
	}{{"loaded", l.loaded.Load()}, {"not_found", l.notFound.Load()}, {"failed", l.failed.Load()}, {"no_loader", l.noLoader.Load()}} {
		ch <- prometheus.MustNewConstMetric(descLoads, prometheus.CounterValue, float64(r.v), r.name)
	}
	ch <- prometheus.MustNewConstMetric(descLoadRefreshes, prometheus.CounterValue, float64(l.refreshes.Load()))
	ch <- prometheus.MustNewConstMetric(descLoadJoined, prometheus.CounterValue, float64(l.joined.Load()))
	ch <- prometheus.MustNewConstMetric(descNegativeHits, prometheus.CounterValue, float64(l.negativeHits.Load()))
}
