package actors

import (
	"context"
	"errors"
	"sync"
)

// Errors of the runtime.
var (
	ErrStopped = errors.New("actors: stopped")
	ErrFull    = errors.New("actors: inbox full")
	ErrRunning = errors.New("actors: already running")
)

// Inbox is an actor's mailbox: a buffered channel of messages plus a done
// signal that the owner closes when its loop ends, so that senders and askers
// do not wait for an actor that is gone. Send, TrySend and Ask may be called by
// any number of goroutines; Receive is for the owning loop only.
type Inbox[M any] struct {
	ch   chan M
	done chan struct{}
	once sync.Once
}

// NewInbox returns an inbox that buffers up to size messages (0 = unbuffered).
func NewInbox[M any](size int) *Inbox[M] {
	return &Inbox[M]{ch: make(chan M, max(size, 0)), done: make(chan struct{})}
}

// Receive is the channel the owner's loop selects on.
func (in *Inbox[M]) Receive() <-chan M { return in.ch }

// Done is closed once the owner has called Close.
func (in *Inbox[M]) Done() <-chan struct{} { return in.done }

// Close marks the owner as gone: later sends fail with ErrStopped and pending
// asks return. The message channel itself is never closed, so a sender racing
// with Close cannot panic. Close is idempotent.
func (in *Inbox[M]) Close() { in.once.Do(func() { close(in.done) }) }

// Len is the number of messages waiting.
func (in *Inbox[M]) Len() int { return len(in.ch) }

// Send queues m, waiting for room. It fails with ErrStopped once the owner has
// closed the inbox, or with ctx's error.
func (in *Inbox[M]) Send(ctx context.Context, m M) error {
	select {
	case <-in.done: // checked first: a closed inbox must not swallow messages into its buffer
		return ErrStopped
	default:
	}
	select {
	case in.ch <- m:
		return nil
	case <-in.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TrySend queues m without waiting: ErrFull when the buffer is full,
// ErrStopped once the owner has closed the inbox.
func (in *Inbox[M]) TrySend(m M) error {
	select {
	case <-in.done:
		return ErrStopped
	default:
	}
	select {
	case in.ch <- m:
		return nil
	default:
		return ErrFull
	}
}

// Ask sends the message build makes around a fresh reply channel and waits for
// the answer. It returns ErrStopped if the owner's loop ends first, or ctx's
// error. The reply channel has room for one answer, so the actor never blocks
// on replying, even to an asker that gave up.
func Ask[M, R any](ctx context.Context, in *Inbox[M], build func(reply chan<- R) M) (R, error) {
	var zero R
	reply := make(chan R, 1)
	if err := in.Send(ctx, build(reply)); err != nil {
		return zero, err
	}
	select {
	case r := <-reply: // answered
		return r, nil
	case <-in.done: // the loop ended; it may have answered just before
		select {
		case r := <-reply:
			return r, nil
		default:
			return zero, ErrStopped
		}
	case <-ctx.Done(): // the asker gave up
		return zero, ctx.Err()
	}
}
