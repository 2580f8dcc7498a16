package store

import (
	"context"
	"time"

	"github.com/roostkv/roost/actors"
)

// inboxSize is how many requests may wait for the loop.
const inboxSize = 64

// Start runs the store's actor loop (the periodic TTL sweep and the Ask*
// requests) in its own goroutine and returns at once. Start after Stop does
// nothing: a store's loop runs once.
func (s *Store) Start() {
	_ = s.runner.Start(context.Background(), s.run)
}

// Stop ends the loop and returns once it has ended. It is idempotent. The data
// stays usable: Get, Set, Delete, Scan and Stats keep working (expired
// entries are still hidden and removed when read); only the background sweep
// and the Ask* methods (ErrStopped) are gone.
func (s *Store) Stop() {
	_ = s.runner.Stop()
	s.inbox.Close() // also when the loop never started
}

// run is the actor loop: it alone does the store's background work.
func (s *Store) run(ctx context.Context) error {
	defer s.inbox.Close()
	tick, stopTicker := s.newTicker(s.cfg.SweepInterval)
	defer stopTicker()
	for {
		select {
		case <-ctx.Done(): // Stop
			return nil
		case <-tick: // time to look for expired entries
			s.sweep()
		case m := <-s.inbox.Receive(): // a request
			s.step(m)
		}
	}
}

// step answers one request.
func (s *Store) step(m message) {
	switch m := m.(type) {
	case getRequest:
		e, err := s.Get(m.Key)
		m.Reply <- getResponse{Entry: e, Err: err}
	case statsRequest:
		m.Reply <- s.Stats()
	case sweepRequest:
		m.Reply <- s.sweep()
	}
}

// ask sends a request to the loop and waits for the answer; ErrStopped when
// the loop is not running.
func ask[R any](ctx context.Context, s *Store, build func(chan<- R) message) (R, error) {
	if !s.runner.Running() {
		var zero R
		return zero, ErrStopped
	}
	r, err := actors.Ask(ctx, s.inbox, build)
	if err == actors.ErrStopped {
		err = ErrStopped
	}
	return r, err
}

// realTicker is the wall-clock ticker of the sweep.
func realTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
