package store

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock tells the time. It is injected so that TTL tests need no sleeps.
// Implementations must be safe for concurrent use.
type Clock interface {
	Now() time.Time
}

// WallClock is the real time.
type WallClock struct{}

// Now is time.Now.
func (WallClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that moves only when told to; for tests. Its methods
// may be called by any number of goroutines.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a clock stopped at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// hlc is the store-wide hybrid logical clock that versions every write:
// next = max(now in Unix microseconds, last+1). Versions are therefore
// strictly increasing across the store, never 0, close to wall time, and
// keep rising across a restart without being persisted (as long as the wall
// clock moved forward by more than the writes per microsecond ran ahead of it).
type hlc struct {
	_     [64]byte // keep the hot CAS word off the cache lines of its neighbours
	last  atomic.Uint64
	_     [56]byte
	clock Clock
}

// next returns a fresh version.
func (c *hlc) next() uint64 {
	now := c.clock.Now().UnixMicro()
	for {
		last := c.last.Load()
		v := last + 1
		if now > 0 && uint64(now) > v {
			v = uint64(now)
		}
		if c.last.CompareAndSwap(last, v) {
			return v
		}
	}
}

// observe makes later versions greater than v.
func (c *hlc) observe(v uint64) {
	for {
		last := c.last.Load()
		if v <= last || c.last.CompareAndSwap(last, v) {
			return
		}
	}
}
