package actors

import (
	"context"
	"errors"
	"sync"
)

// Runner runs one actor loop in its own goroutine. The zero value is ready to
// use. A Runner runs at most one loop in its life: after Stop it stays stopped.
// Its methods may be called by any number of goroutines.
type Runner struct {
	mu      sync.Mutex
	state   runState
	cancel  context.CancelFunc
	done    chan struct{} // closed when the loop has returned (or at Stop if it never started)
	err     error         // what the loop returned
	started bool
}

type runState uint8

const (
	idle runState = iota
	running
	stopped
)

// Start runs run(ctx) in a new goroutine and returns at once. ctx is derived
// from parent and cancelled by Stop. It fails with ErrRunning if a loop was
// already started and ErrStopped after Stop.
func (r *Runner) Start(parent context.Context, run func(ctx context.Context) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch r.state {
	case running:
		return ErrRunning
	case stopped:
		return ErrStopped
	}
	ctx, cancel := context.WithCancel(parent)
	done := r.doneLocked()
	r.state, r.cancel, r.started = running, cancel, true
	go func() {
		err := run(ctx)
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		close(done)
	}()
	return nil
}

// Stop cancels the loop's context and returns once the loop has returned. It
// is idempotent and safe before Start (the Runner then never starts). It
// returns the loop's error, except an error caused by the cancellation itself.
func (r *Runner) Stop() error {
	r.mu.Lock()
	done := r.doneLocked()
	switch r.state {
	case idle:
		close(done)
	case running:
		r.cancel()
	}
	r.state = stopped
	r.mu.Unlock()

	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	if errors.Is(r.err, context.Canceled) {
		return nil
	}
	return r.err
}

// Done is closed once the loop has returned, or when Stop is called on a
// Runner that never started.
func (r *Runner) Done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.doneLocked()
}

// Running reports whether the loop has started and not yet returned.
func (r *Runner) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

func (r *Runner) doneLocked() chan struct{} {
	if r.done == nil {
		r.done = make(chan struct{})
	}
	return r.done
}
