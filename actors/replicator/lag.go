package replicator

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Replication lag: how long after the primary applied a write a replica
// applied it. Versions come from the primary's hybrid clock, which is wall
// time in microseconds while writes run below a million per second, so the
// lag of an entry is the replica's clock minus the entry's version. Clocks
// of different machines differ by their skew; on one machine the figure is
// exact.

// lagRecorder keeps the lags of the entries applied in order, in an HDR
// histogram, from 1 µs to 1 minute at 2 significant digits.
type lagRecorder struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newLagRecorder() *lagRecorder {
	return &lagRecorder{h: hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 2)}
}

// recordBatch notes the lags of a batch's entries applied now, under one
// lock.
func (l *lagRecorder) recordBatch(entries []Entry, now time.Time) {
	us := now.UnixMicro()
	l.mu.Lock()
	for i := range entries {
		l.recordLocked(entries[i].Version, us)
	}
	l.mu.Unlock()
}

func (l *lagRecorder) recordLocked(v uint64, nowMicro int64) {
	lag := nowMicro - int64(v)
	if lag < 0 || lag > int64(time.Minute/time.Microsecond) {
		return // not a clock reading (a burst ran the clock ahead), or a stale copy
	}
	_ = l.h.RecordValue(max(lag, 1))
}

// Lag summarises the replication lag of the entries this node applied as a
// replica since the last call (Lag resets it).
type Lag struct {
	Entries int64         `json:"entries"`
	P50     time.Duration `json:"p50"`
	P99     time.Duration `json:"p99"`
	Max     time.Duration `json:"max"`
}

// Lag returns the replication lag of the entries applied since the previous
// call, and starts counting anew.
func (r *Replicator) Lag() Lag {
	l := r.lag
	l.mu.Lock()
	defer l.mu.Unlock()
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	out := Lag{Entries: l.h.TotalCount(), P50: us(l.h.ValueAtQuantile(50)), P99: us(l.h.ValueAtQuantile(99)), Max: us(l.h.Max())}
	l.h.Reset()
	return out
}
