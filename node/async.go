package node

import "sync"

// asyncGroup runs request handlers' slow work (forwards, ack=all writes) on
// goroutines of their own, so that a subscription keeps serving meanwhile,
// and lets Stop wait for them. Handlers may still run while Stop waits (a
// drained subscription delivers what it holds): once waiting has begun,
// Go runs fn on the caller's goroutine instead, so that every goroutine the
// wait counts was added before it began.
type asyncGroup struct {
	mu     sync.RWMutex // Go holds it shared, close exclusively
	closed bool
	wg     sync.WaitGroup
}

// Go runs fn on a goroutine of its own, or inline once close has begun.
func (g *asyncGroup) Go(fn func()) {
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		fn()
		return
	}
	g.wg.Add(1)
	g.mu.RUnlock()
	go func() {
		defer g.wg.Done()
		fn()
	}()
}

// close makes later Go calls run inline and returns a channel closed once
// every goroutine started before has ended.
func (g *asyncGroup) close() <-chan struct{} {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	return done
}
