package client

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roostkv/roost/bus"
)

// batcher gathers concurrent single-key calls into BatchRequests. Each call
// has a destination, the batch subject of its key's primary (or the generic
// one), chosen when it is made. One loop (run) owns the queue of waiting
// calls and the count of batches in flight; it sends a batch, in a goroutine
// of its own, for the oldest waiting call whose destination is free, with
// every waiting call of that destination and ack mode (up to maxOps and the
// payload limit). A destination is free while fewer than maxInFlight batches
// are in flight in all, and always when none of them goes to it, so that a
// slow node never holds up the others. There is no linger: a lone call
// leaves at once, and calls pile up only while their destination is busy.
//
// Why a global limit: on one box (bench/cluster_bench_test.go) maxInFlight
// per destination made smaller batches and ran a third slower than a global
// limit; the exception for idle destinations keeps nearly all of the gain.
type batcher struct {
	c           *Client
	maxOps      int           // operations per message
	maxInFlight int           // messages awaiting a reply at once, in all (see free)
	timeout     time.Duration // per call when its context has no deadline

	inbox    chan *call    // callers → run: a new operation
	finished chan string   // send → run: a batch to this destination is over
	stop     chan struct{} // closed by shutdown
	dead     chan struct{} // closed when run and every send have ended

	// Owned by run.
	q        queue
	inFlight map[string]int // destination -> batches sent and not finished; no zero entries
	total    int            // batches sent and not finished, to any destination
	sends    sync.WaitGroup // send goroutines
	ctx      context.Context
	cancel   context.CancelFunc // ends in-flight requests on shutdown

	waiting atomic.Int64 // calls queued after run's last step, for tests
}

// call is one single-key operation between its caller and the batcher.
type call struct {
	req      bus.Request
	ack      string          // ack mode of its batch
	dest     string          // subject of its batch: its key's primary's, or the generic one
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
		finished:    make(chan string, c.cfg.maxInFlight),
		inFlight:    map[string]int{},
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
		dest:     b.c.destOf(req.Key),
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
		case dest := <-b.finished: // a batch got its reply, or failed
			b.total--
			if b.inFlight[dest]--; b.inFlight[dest] == 0 {
				delete(b.inFlight, dest)
			}
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

// flush sends batches while calls wait for a destination with a free slot.
func (b *batcher) flush() {
	if b.q.len() == 0 {
		return
	}
	maxBytes := b.c.maxBatchBytes()
	for {
		dest, ack, calls := b.q.next(b.maxOps, maxBytes, b.free)
		if len(calls) == 0 {
			return
		}
		b.inFlight[dest]++
		b.total++
		b.sends.Add(1)
		go b.send(dest, ack, calls)
	}
}

// free reports whether a batch may leave for dest now: fewer than
// maxInFlight are in flight, or none goes to dest.
func (b *batcher) free(dest string) bool { return b.total < b.maxInFlight || b.inFlight[dest] == 0 }

// send makes one batch request to dest for calls and hands each its outcome.
func (b *batcher) send(dest, ack string, calls []*call) {
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
	results, err := b.c.batch(ctx, dest, ops, ack)
	cancel()
	for i, c := range calls {
		if err != nil {
			c.out <- outcome{err: err}
		} else {
			c.out <- outcome{res: results[i]}
		}
	}
	// The callers just answered usually call again at once. Let them queue
	// before the slot frees, so that their calls leave together: freed
	// first, the slot took the first of them alone and the others waited a
	// round trip for it (a third fewer gets per second with 32 callers, see
	// BENCHMARKS.md).
	runtime.Gosched()
	select {
	case b.finished <- dest:
	case <-b.stop: // run no longer counts slots
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

// next removes and returns the next batch: the oldest waiting call whose
// destination is free, and the calls after it with the same destination and
// ack mode, in order, up to maxOps calls and maxBytes of estimated size (a
// single call larger than maxBytes goes alone, and the node or NATS refuses
// it). Calls whose caller has given up are dropped unsent. The other calls
// keep their place.
func (q *queue) next(maxOps, maxBytes int, free func(dest string) bool) (dest, ack string, batch []*call) {
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
		switch {
		case len(batch) == 0 && free(c.dest):
			dest, ack = c.dest, c.ack
			batch = make([]*call, 0, min(maxOps, len(q.pending)-i))
		case len(batch) == 0 || c.dest != dest || c.ack != ack || bytes+c.size > maxBytes:
			keep = append(keep, c)
			continue
		}
		batch = append(batch, c)
		bytes += c.size
	}
	clear(q.pending[len(keep):]) // let dropped and sent calls be collected
	q.pending = keep
	return dest, ack, batch
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
