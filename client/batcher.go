package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roostkv/roost/bus"
)

// batcher gathers concurrent single-key calls into BatchRequests. One loop
// (run) owns the queue of waiting calls and the count of batches in flight;
// it sends a batch, in a goroutine of its own, as soon as fewer than
// maxInFlight are in flight, with every waiting call of the oldest call's ack
// mode (up to maxOps and the payload limit). There is no linger: a lone call
// leaves at once, and calls pile up only while every slot is busy.
type batcher struct {
	c           *Client
	maxOps      int           // operations per message
	maxInFlight int           // messages awaiting a reply at once
	timeout     time.Duration // per call when its context has no deadline

	inbox    chan *call    // callers → run: a new operation
	finished chan struct{} // send → run: a batch is over; buffered maxInFlight, never blocks
	stop     chan struct{} // closed by shutdown
	dead     chan struct{} // closed when run and every send have ended

	// Owned by run.
	q        queue
	inFlight int            // batches sent and not finished
	sends    sync.WaitGroup // send goroutines
	ctx      context.Context
	cancel   context.CancelFunc // ends in-flight requests on shutdown

	waiting atomic.Int64 // calls queued after run's last step, for tests
}

// call is one single-key operation between its caller and the batcher.
type call struct {
	req      bus.Request
	ack      string          // ack mode of its batch
	size     int             // estimated bytes in a BatchRequest
	deadline time.Time       // when its caller gives up
	done     <-chan struct{} // the caller's ctx.Done(): once closed, the call is not sent
	out      chan outcome    // buffered 1; gets exactly one outcome unless the call is dropped
}

// outcome is what a call's caller receives.
type outcome struct {
	res bus.Result
	err error
}

func newBatcher(c *Client) *batcher {
	b := &batcher{
		c:           c,
		maxOps:      c.cfg.maxBatch,
		maxInFlight: c.cfg.maxInFlight,
		timeout:     c.cfg.timeout,
		inbox:       make(chan *call, c.cfg.maxBatch*c.cfg.maxInFlight),
		finished:    make(chan struct{}, c.cfg.maxInFlight),
		stop:        make(chan struct{}),
		dead:        make(chan struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b
}

// do queues req and waits for its result, its context, or shutdown. Called
// by any goroutine.
func (b *batcher) do(ctx context.Context, req bus.Request, ack string) (bus.Result, error) {
	if ctx.Err() != nil {
		return bus.Result{}, ctxErr(ctx, b.c.subj.Batch())
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.timeout)
		defer cancel()
		deadline, _ = ctx.Deadline()
	}
	c := &call{
		req:      req,
		ack:      ack,
		size:     opSize(&req),
		deadline: deadline,
		done:     ctx.Done(),
		out:      make(chan outcome, 1),
	}
	select {
	case b.inbox <- c:
	case <-ctx.Done():
		return bus.Result{}, ctxErr(ctx, b.c.subj.Batch())
	case <-b.stop:
		return bus.Result{}, ErrClosed
	}
	select {
	case o := <-c.out:
		return o.res, o.err
	case <-ctx.Done():
		return bus.Result{}, ctxErr(ctx, b.c.subj.Batch())
	case <-b.dead:
		select {
		case o := <-c.out: // failed or answered during shutdown
			return o.res, o.err
		default: // slipped into the inbox after shutdown drained it
			return bus.Result{}, ErrClosed
		}
	}
}

// run is the batcher's loop; it returns after shutdown.
func (b *batcher) run() {
	defer close(b.dead)
	for {
		select {
		case c := <-b.inbox: // a caller's operation
			b.q.push(c)
			b.drainInbox()
		case <-b.finished: // a batch got its reply, or failed
			b.inFlight--
		case <-b.stop: // Close
			b.onStop()
			return
		}
		b.flush()
		b.waiting.Store(int64(b.q.len()))
	}
}

// drainInbox queues every call already waiting in the inbox, so that they
// leave together rather than one by one.
func (b *batcher) drainInbox() {
	for {
		select {
		case c := <-b.inbox:
			b.q.push(c)
		default:
			return
		}
	}
}

// flush sends batches while slots are free and calls wait.
func (b *batcher) flush() {
	if b.q.len() == 0 {
		return
	}
	maxBytes := b.c.maxBatchBytes()
	for b.inFlight < b.maxInFlight {
		ack, calls := b.q.next(b.maxOps, maxBytes)
		if len(calls) == 0 {
			return
		}
		b.inFlight++
		b.sends.Add(1)
		go b.send(ack, calls)
	}
}

// send makes one batch request for calls and hands each its outcome.
func (b *batcher) send(ack string, calls []*call) {
	defer b.sends.Done()
	deadline := calls[0].deadline
	ops := make([]bus.Request, len(calls))
	for i, c := range calls {
		ops[i] = c.req
		if c.deadline.After(deadline) {
			deadline = c.deadline
		}
	}
	ctx, cancel := context.WithDeadline(b.ctx, deadline)
	results, err := b.c.batch(ctx, ops, ack)
	cancel()
	b.finished <- struct{}{} // free the slot first: calls queued meanwhile leave at once
	for i, c := range calls {
		if err != nil {
			c.out <- outcome{err: err}
		} else {
			c.out <- outcome{res: results[i]}
		}
	}
}

// onStop fails every queued call and waits for the batches in flight, which
// the cancelled context ends at once.
func (b *batcher) onStop() {
	b.cancel()
	b.drainInbox()
	for _, c := range b.q.takeAll() {
		c.out <- outcome{err: ErrClosed}
	}
	b.sends.Wait()
}

// shutdown stops run and returns once it and every send have ended. Called
// once, by Client.Close.
func (b *batcher) shutdown() {
	close(b.stop)
	<-b.dead
}

// queue is the batcher's list of waiting calls, oldest first. It is not safe
// for concurrent use: run owns it.
type queue struct {
	pending []*call
}

func (q *queue) push(c *call) { q.pending = append(q.pending, c) }

func (q *queue) len() int { return len(q.pending) }

// next removes and returns the next batch: the oldest waiting call and the
// calls after it with the same ack mode, in order, up to maxOps calls and
// maxBytes of estimated size (a single call larger than maxBytes goes alone,
// and the node or NATS refuses it). Calls whose caller has given up are
// dropped unsent. Calls of other ack modes keep their place.
func (q *queue) next(maxOps, maxBytes int) (ack string, batch []*call) {
	keep := q.pending[:0]
	bytes := 0
	for i, c := range q.pending {
		if len(batch) == maxOps {
			keep = append(keep, q.pending[i:]...)
			break
		}
		if c.abandoned() {
			continue
		}
		if len(batch) == 0 {
			ack = c.ack
			batch = make([]*call, 0, min(maxOps, len(q.pending)-i))
		} else if c.ack != ack || bytes+c.size > maxBytes {
			keep = append(keep, c)
			continue
		}
		batch = append(batch, c)
		bytes += c.size
	}
	clear(q.pending[len(keep):]) // let dropped and sent calls be collected
	q.pending = keep
	return ack, batch
}

// takeAll removes and returns every waiting call.
func (q *queue) takeAll() []*call {
	all := q.pending
	q.pending = nil
	return all
}

// abandoned reports whether the call's caller has stopped waiting.
func (c *call) abandoned() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}
