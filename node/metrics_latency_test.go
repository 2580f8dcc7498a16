package node

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gatherHistogram returns the one histogram g exposes under name with the
// label op=get (or no label).
func gatherHistogram(t *testing.T, g prometheus.Gatherer, name string) *dto.Histogram {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() == "get" {
				return m.GetHistogram()
			}
		}
	}
	t.Fatalf("no histogram %s", name)
	return nil
}

// TestLatencyHistogramIsPrometheus: the same observations give the same
// exposition as Prometheus's own histogram with the same buckets: bucket
// by bucket (bounds included: le), count, and sum.
func TestLatencyHistogramIsPrometheus(t *testing.T) {
	m := newMetrics(&Node{})
	ref := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ref", Buckets: latencyBuckets})
	refReg := prometheus.NewRegistry()
	refReg.MustRegister(ref)
	durations := []time.Duration{0, 1, 249, 250, 251, 999, time.Microsecond, 2500, 2501, 99 * time.Microsecond,
		100 * time.Microsecond, time.Millisecond, 100 * time.Millisecond, 100*time.Millisecond + 1, 5 * time.Second}
	for _, d := range durations {
		m.latency[opGet].Observe(d.Seconds())
		ref.Observe(d.Seconds())
	}
	// n at once is n times one.
	m.latency[opGet].observeN(3*time.Microsecond, 4)
	m.doneBatch(opGet, time.Now(), nil) // no operations: nothing
	for range 4 {
		ref.Observe((3 * time.Microsecond).Seconds())
	}
	got := gatherHistogram(t, m.reg, "roost_operation_duration_seconds")
	want := gatherHistogram(t, refReg, "ref")
	if got.GetSampleCount() != want.GetSampleCount() || math.Abs(got.GetSampleSum()-want.GetSampleSum()) > 1e-9 {
		t.Errorf("count %d, sum %v; Prometheus %d, %v", got.GetSampleCount(), got.GetSampleSum(), want.GetSampleCount(), want.GetSampleSum())
	}
	if len(got.GetBucket()) != len(want.GetBucket()) {
		t.Fatalf("%d buckets, Prometheus %d", len(got.GetBucket()), len(want.GetBucket()))
	}
	for i, b := range got.GetBucket() {
		w := want.GetBucket()[i]
		if b.GetUpperBound() != w.GetUpperBound() || b.GetCumulativeCount() != w.GetCumulativeCount() {
			t.Errorf("bucket le=%v: %d; Prometheus le=%v: %d", b.GetUpperBound(), b.GetCumulativeCount(), w.GetUpperBound(), w.GetCumulativeCount())
		}
	}
}
