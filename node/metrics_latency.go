package node

import (
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyHistogram is one op's roost_operation_duration_seconds: a
// Prometheus histogram (cumulative buckets of latencyBuckets, a count and
// a sum, exposed by latencyCollector) that records n observations of one
// duration at the cost of one. A batch of gets is observed as its n gets,
// each taking the batch's time shared evenly (metrics.doneBatch): counts
// stay exact, one per operation, for one bucket lookup and two atomic
// adds per batch instead of per get. Prometheus's own histogram has no
// observe-n-times.
//
// A scrape reads the buckets and the sum one after the other while
// operations go on, so the sum may be a few operations ahead of or behind
// the buckets; the count is the buckets' total, so they always agree.
type latencyHistogram struct {
	buckets [numLatencyBuckets + 1]atomic.Uint64 // observations per bucket of latencyBuckets; the last is over the largest bound
	sumNs   atomic.Uint64                        // total observed, in nanoseconds
}

// numLatencyBuckets is len(latencyBuckets).
const numLatencyBuckets = 11

// latencyBounds are latencyBuckets as durations, for the bucket lookup.
var latencyBounds = func() [numLatencyBuckets]time.Duration {
	if len(latencyBuckets) != numLatencyBuckets {
		panic("node: numLatencyBuckets is not len(latencyBuckets)")
	}
	var b [numLatencyBuckets]time.Duration
	for i, s := range latencyBuckets {
		b[i] = time.Duration(math.Round(s * float64(time.Second)))
	}
	return b
}()

// observeN records n operations that took d each.
func (h *latencyHistogram) observeN(d time.Duration, n uint64) {
	if d < 0 {
		d = 0
	}
	// The first bound at or above d, as Prometheus's buckets (le) count.
	i := sort.Search(numLatencyBuckets, func(i int) bool { return latencyBounds[i] >= d })
	h.buckets[i].Add(n)
	h.sumNs.Add(uint64(d) * n)
}

// Observe records one operation that took seconds (prometheus.Observer).
func (h *latencyHistogram) Observe(seconds float64) {
	h.observeN(time.Duration(math.Round(seconds*float64(time.Second))), 1)
}

// snapshot returns the histogram's count, sum in seconds and cumulative
// bucket counts by upper bound, as Prometheus exposes them.
func (h *latencyHistogram) snapshot() (count uint64, sum float64, cumulative map[float64]uint64) {
	cumulative = make(map[float64]uint64, numLatencyBuckets)
	for i, bound := range latencyBuckets {
		count += h.buckets[i].Load()
		cumulative[bound] = count
	}
	count += h.buckets[numLatencyBuckets].Load()
	return count, time.Duration(h.sumNs.Load()).Seconds(), cumulative
}

// latencyCollector exposes the latency histograms of metrics.
type latencyCollector struct {
	m    *metrics
	desc *prometheus.Desc
}

func newLatencyCollector(m *metrics) *latencyCollector {
	return &latencyCollector{m: m, desc: prometheus.NewDesc(
		"roost_operation_duration_seconds",
		"Time this node took to execute a get, set or del it is the primary of (checks and store; not the network).",
		[]string{"op"}, nil,
	)}
}

func (c *latencyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *latencyCollector) Collect(ch chan<- prometheus.Metric) {
	for op := range numOps {
		count, sum, buckets := c.m.latency[op].snapshot()
		ch <- prometheus.MustNewConstHistogram(c.desc, count, sum, buckets, opNames[op])
	}
}
