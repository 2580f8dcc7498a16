package node

import (
	"errors"
	"testing"
	"time"

	"github.com/roostkv/roost/actors/store"
)

func TestResultOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want opResult
	}{
		{nil, resOK},
		{explain(store.ErrNotFound, "k", false, 0), resNotFound},
		{explain(store.ErrCASMismatch, "k", true, 3), resConflict},
		{errBadRequest("bad"), resBadRequest},
		{errTooLarge("big"), resTooLarge},
		{explain(store.ErrStopped, "k", false, 0), resUnavailable},
		{errors.New("boom"), resError},
	} {
		if got := resultOf(tc.err); got != tc.want {
			t.Errorf("resultOf(%v) = %s, want %s", tc.err, resultNames[got], resultNames[tc.want])
		}
	}
}

func TestOpTotals(t *testing.T) {
	m := newMetrics(&Node{})
	var ok, missing, bad error = nil, explain(store.ErrNotFound, "k", false, 0), errBadRequest("bad")
	m.done(opGet, time.Now(), &ok)
	m.done(opGet, time.Now(), &missing)
	m.done(opSet, time.Now(), &bad)
	byOp, errs := m.opTotals()
	if byOp["get"] != 2 || byOp["set"] != 1 || byOp["del"] != 0 || errs != 1 {
		t.Fatalf("opTotals = %v, %d errors", byOp, errs)
	}
}

// BenchmarkMetricsDone is the cost the metrics add to every operation.
func BenchmarkMetricsDone(b *testing.B) {
	m := newMetrics(&Node{})
	b.RunParallel(func(pb *testing.PB) {
		var err error
		for pb.Next() {
			m.done(opGet, time.Now(), &err)
		}
	})
}

// BenchmarkMetricsDoneSerial is the same from one goroutine.
func BenchmarkMetricsDoneSerial(b *testing.B) {
	m := newMetrics(&Node{})
	var err error
	for b.Loop() {
		m.done(opGet, time.Now(), &err)
	}
}

// BenchmarkClockReads is the part of done's cost that is the two clock
// reads (time.Now and time.Since), for comparison.
func BenchmarkClockReads(b *testing.B) {
	for b.Loop() {
		_ = time.Since(time.Now())
	}
}
