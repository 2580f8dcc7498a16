package node

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/bus/wire"
)

// Metrics: one Prometheus registry per node (never the global one), served
// at GET /metrics. The hot path costs an atomic add and a histogram observe
// per operation, taken where the operation executes (the primary of its
// key's partition; a forwarding node does not count it again). Everything
// else is read from the store and the membership view at scrape time.

// opKind is an operation of the metrics.
type opKind uint8

const (
	opGet opKind = iota
	opSet
	opDel
	opIncr
	opTouch
	numOps
)

var opNames = [numOps]string{"get", "set", "del", "incr", "touch"}

// opResult is how an operation ended, by its status code.
type opResult uint8

const (
	resOK          opResult = iota // 200
	resNotFound                    // 404
	resConflict                    // 409: CAS mismatch
	resBadRequest                  // 400
	resTooLarge                    // 413
	resUnavailable                 // 503
	resError                       // anything else
	numResults
)

var resultNames = [numResults]string{"ok", "not_found", "conflict", "bad_request", "too_large", "unavailable", "error"}

// resultOf classifies an error of the operation path.
func resultOf(err error) opResult {
	if err == nil {
		return resOK
	}
	return resultOfCode(codeOf(err))
}

// resultOfCode classifies a status code.
func resultOfCode(code int) opResult {
	switch code {
	case wire.CodeOK:
		return resOK
	case wire.CodeNotFound:
		return resNotFound
	case wire.CodeConflict:
		return resConflict
	case wire.CodeBadRequest:
		return resBadRequest
	case wire.CodeTooLarge:
		return resTooLarge
	case wire.CodeUnavailable:
		return resUnavailable
	}
	return resError
}

// latencyBuckets are the upper bounds, in seconds, of the operation latency
// histograms: an operation takes from a few hundred nanoseconds (a get) to
// milliseconds (a set waiting for memory).
var latencyBuckets = []float64{250e-9, 500e-9, 1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 100e-6, 1e-3, 10e-3, 100e-3}

// metrics are a node's counters and its registry.
type metrics struct {
	reg     *prometheus.Registry
	ops     [numOps][numResults]atomic.Uint64 // operations executed here, by kind and result
	latency [numOps]latencyHistogram          // seconds per operation, by kind (metrics_latency.go)
	keys    keyCounter                        // the last count of keys by role (agent_keys.go)

	forwarded atomic.Uint64 // operations this node sent on to their primary (forward.go)
}

// newMetrics builds the registry of n: operation metrics, the node collector
// (store, members, partitions, replication), and the Go runtime and process
// collectors.
func newMetrics(n *Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.reg.MustRegister(
		newLatencyCollector(m),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "roost",
			Name:      "forwarded_total",
			Help:      "Operations this node received but does not lead, and sent on to their partition's primary (one hop).",
		}, func() float64 { return float64(m.forwarded.Load()) }),
		&nodeCollector{n: n, m: m},
		evictionCollector{n},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// done records one operation that started at start and ended with *err. It
// is meant for a defer in the operation: `defer n.metrics.done(opGet,
// time.Now(), &err)`.
func (m *metrics) done(op opKind, start time.Time, err *error) {
	m.ops[op][resultOf(*err)].Add(1)
	m.latency[op].observeN(time.Since(start), 1)
}

// doneBatch records len(results) operations of kind op that ran one after
// another from start, ending with results: each counts by its result, and
// is observed in the latency histogram with the batch's time shared evenly
// as its duration. One clock reading and one histogram update for a batch
// instead of two and one per operation; the counters take one add per
// result kind present.
func (m *metrics) doneBatch(op opKind, start time.Time, results []wire.Result) {
	if len(results) == 0 {
		return
	}
	var by [numResults]uint64
	for i := range results {
		by[resultOfCode(int(results[i].Code))]++
	}
	for r, n := range by {
		if n > 0 {
			m.ops[op][r].Add(n)
		}
	}
	m.latency[op].observeN(time.Since(start)/time.Duration(len(results)), uint64(len(results)))
}

// doneResult records an operation whose outcome is an API result.
func (m *metrics) doneResult(op opKind, start time.Time, r wire.Result) {
	var err error
	if r.Code != wire.CodeOK {
		err = &apiError{code: int(r.Code), msg: r.Error}
	}
	m.done(op, start, &err)
}

// opKindOf is the metrics kind of a batch op.
func opKindOf(op wire.Op) opKind {
	switch op {
	case wire.OpSet:
		return opSet
	case wire.OpDel:
		return opDel
	case wire.OpIncr:
		return opIncr
	case wire.OpTouch:
		return opTouch
	}
	return opGet
}

// opTotals are the operations executed here so far: by kind, all results,
// and how many failed for another reason than a missing key or a CAS
// mismatch.
func (m *metrics) opTotals() (byOp map[string]uint64, errors uint64) {
	byOp = make(map[string]uint64, numOps)
	for op := range numOps {
		for r := range numResults {
			c := m.ops[op][r].Load()
			byOp[opNames[op]] += c
			if r != resOK && r != resNotFound && r != resConflict {
				errors += c
			}
		}
	}
	return byOp, errors
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// nodeCollector reads the node's figures at scrape time.
type nodeCollector struct {
	n *Node
	m *metrics
}

var (
	descOps = prometheus.NewDesc("roost_operations_total",
		"Operations this node executed as the primary of their key's partition, by kind (get, set, del) and result (ok, not_found, conflict, bad_request, too_large, unavailable, error).",
		[]string{"op", "result"}, nil)
	descKeys        = prometheus.NewDesc("roost_store_keys", "Live keys in this node's store, by the node's role for their partition: primary (it leads the partition; the sum over the nodes is the cluster's distinct keys) or replica (copies of keys other nodes lead).", []string{"role"}, nil)
	descBytes       = prometheus.NewDesc("roost_store_bytes", "Accounted memory of this node's store: keys, values and per-entry overhead, in bytes.", nil, nil)
	descMaxBytes    = prometheus.NewDesc("roost_store_max_bytes", "The store's memory limit (--max-memory) in bytes; 0 = unlimited.", nil, nil)
	descHits        = prometheus.NewDesc("roost_store_hits_total", "Gets that found a live key in this node's store.", nil, nil)
	descMisses      = prometheus.NewDesc("roost_store_misses_total", "Gets that found nothing in this node's store.", nil, nil)
	descEvictions   = prometheus.NewDesc("roost_store_evictions_total", "Entries evicted to stay under --max-memory.", nil, nil)
	descExpirations = prometheus.NewDesc("roost_store_expirations_total", "Entries removed because their TTL passed.", nil, nil)
	descMembers     = prometheus.NewDesc("roost_members", "Members in this node's membership view, by status (alive, suspect, dead, left).", []string{"status"}, nil)
	descPartitions  = prometheus.NewDesc("roost_partitions", "Partitions this node holds in its table, by role (primary, replica).", []string{"role"}, nil)
	descLag         = prometheus.NewDesc("roost_replication_lag_seconds",
		"How long after their primary this node's replicas applied the log entries they received since the previous scrape: the 99th percentile, in seconds.", nil, nil)
	descUnder = prometheus.NewDesc("roost_partitions_under_replicated", "Partitions whose owners in this node's table do not all hold them in sync (primary ready, replicas synced under its term), as the heartbeats say: 0 is the gate for a rolling restart (GET /v1/roost/ready?safe).", nil, nil)
	descView  = prometheus.NewDesc("roost_membership_view", "Version of the membership view this node routes by.", nil, nil)
	descInfo  = prometheus.NewDesc("roost_node_info", "Always 1; the labels describe the node.", []string{"name", "id", "role", "version"}, nil)
)

// memberStatuses are the statuses roost_members always reports, zeros included.
var memberStatuses = []membership.Status{membership.Alive, membership.Suspect, membership.Dead, membership.Left}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOps, descKeys, descBytes, descMaxBytes, descHits, descMisses, descEvictions, descExpirations, descMembers, descPartitions, descLag, descUnder, descView, descInfo} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	for op := range numOps {
		for r := range numResults {
			ch <- prometheus.MustNewConstMetric(descOps, prometheus.CounterValue, float64(c.m.ops[op][r].Load()), opNames[op], resultNames[r])
		}
	}
	if n.store != nil {
		st := n.store.Stats()
		kc := n.keyCounts()
		ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(kc.Primary), "primary")
		ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(kc.Replica), "replica")
		ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(st.Bytes))
		ch <- prometheus.MustNewConstMetric(descMaxBytes, prometheus.GaugeValue, float64(st.MaxBytes))
		ch <- prometheus.MustNewConstMetric(descHits, prometheus.CounterValue, float64(st.Hits))
		ch <- prometheus.MustNewConstMetric(descMisses, prometheus.CounterValue, float64(st.Misses))
		ch <- prometheus.MustNewConstMetric(descEvictions, prometheus.CounterValue, float64(st.Evictions))
		ch <- prometheus.MustNewConstMetric(descExpirations, prometheus.CounterValue, float64(st.Expirations))
	}
	byStatus := map[membership.Status]int{}
	primary, replica := 0, 0
	if r := n.routing.Load(); r != nil {
		for _, mb := range r.view.Members {
			byStatus[mb.Status]++
		}
		p, rp := r.table.Owned(n.cfg.Name)
		primary, replica = len(p), len(rp)
		ch <- prometheus.MustNewConstMetric(descView, prometheus.GaugeValue, float64(r.view.Version))
	}
	for _, s := range memberStatuses {
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(byStatus[s]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(descPartitions, prometheus.GaugeValue, float64(primary), "primary")
	ch <- prometheus.MustNewConstMetric(descPartitions, prometheus.GaugeValue, float64(replica), "replica")
	ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, n.replicationLag().Seconds())
	if n.repl != nil {
		ch <- prometheus.MustNewConstMetric(descUnder, prometheus.GaugeValue, float64(n.repl.Safety().UnderReplicated))
	}
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, n.cfg.Name, n.id, n.cfg.Role, Version)
}

// replicationLag is the 99th percentile of the replication lag of the
// entries applied since the previous call.
func (n *Node) replicationLag() time.Duration {
	if n.repl == nil {
		return 0
	}
	return n.repl.Lag().P99
}
