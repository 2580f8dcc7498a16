package client

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roostkv/roost/bus/wire"
)

// batcher gathers concurrent single-key calls into BatchRequests. Each call
// has a destination, the batch subject of its key's primary (or the generic
// one), chosen when it is made, and waits in that destination's lane. A
// lane's sender loop takes the waiting calls of one ack mode (up to maxOps
// and the payload limit), sends them as one message, hands each caller its
// outcome, and takes the next batch, until the lane is empty. A call made
// while its lane is idle starts a sender and leaves at once; calls pile up
// only while a batch of their lane is in flight, or for the few
// microseconds its sender regathers (below).
//
// A lane runs one sender, so that the calls made during a round trip all
// leave together in the next message: with 32 callers on one node, letting
// a batch leave whenever one of four slots was free made smaller batches
// and about a fifth fewer gets per second than one slot (BENCHMARKS.md,
// third session). Once it has answered a batch, the sender waits a moment
// (regather: a few yields) for those callers to call again before it takes
// the next batch. Taken at once, the next batch held the first of them to
// come back and the others waited a round trip more: with 128 looping
// callers, batches averaged 45 operations instead of 128 (BENCHMARKS.md,
// issue 15).
//
// A lane gets more senders, up to maxInFlight, only when its queue holds a
// full batch, or when no batch of it has left or come back for stallAfter,
// so that one slow message (a large value, an ack=all write waiting for a
// replica) does not hold up the calls behind it for long. A sender whose
// batch comes back while another is about and no full batch waits retires,
// leaving its callers to the other: the lane goes back to one message
// carrying them all, instead of keeping the callers split in two halves.
//
// The batcher keeps no goroutine while idle and no timer per call: a call
// carries its deadline, a batch request is bounded by the latest deadline of
// its calls, and a call still waiting at its deadline fails when its lane
// next takes a batch, or when the lane's timer finds it overdue (armed while
// calls wait behind busy senders).
//
// A call whose context has no deadline gets the client's timeout, counted
// from the first reading of the clock after it was queued: when a sender
// takes its lane's queue (at once, or within the few yields of a
// regather), or, when it waits behind busy senders, at once. Its caller
// reads no clock: on a virtual machine a reading costs as much as the
// rest of the batcher's work for a call.
type batcher struct {
	c           *Client
	maxOps      int           // operations per message
	maxInFlight int           // messages awaiting a reply at once, per destination
	timeout     time.Duration // per call when its context has no deadline

	mu      sync.Mutex
	lanes   map[string]*lane // destination -> its waiting calls and senders
	closed  bool             // set by shutdown: no new call, no new batch
	senders sync.WaitGroup   // sender loops
}

// stallAfter is how long a lane's batches may make no progress (none sent,
// none answered) before calls waiting behind them get a sender of their own.
// Far above a round trip, even on a loaded machine.
const stallAfter = 2 * time.Millisecond

// lane is one destination's waiting calls and senders. Guarded by
// batcher.mu.
type lane struct {
	dest      string
	q         queue
	busy      int          // sender loops running, each with at most one batch in flight
	gathering int          // of them, those regathering: about to take a batch, none in flight
	waiting   atomic.Int32 // q.len(), for a regathering sender to watch without the lock
	active    time.Time    // when a batch of this lane last left or came back
	stall     *time.Timer  // checks for a stall while calls wait behind busy senders
	armed     bool         // stall is pending
}

// call is one single-key operation between its caller and the batcher.
type call struct {
	req      wire.Request
	ack      string          // ack mode of its batch
	size     int             // estimated bytes in a BatchRequest
	deadline time.Time       // when its caller gives up; zero until stamp gives it the client's timeout
	done     <-chan struct{} // the caller's ctx.Done() (nil for a context that never ends)

	// The outcome: res and err are set by whoever finishes the call (a
	// sender, a stall check, shutdown), which then sends on out. The
	// caller reads them once it has received from out.
	res wire.Result
	err error
	out chan struct{} // buffered 1; gets exactly one signal unless the caller gave up
}

func newBatcher(c *Client) *batcher {
	return &batcher{
		c:           c,
		maxOps:      c.cfg.maxBatch,
		maxInFlight: c.cfg.maxInFlight,
		timeout:     c.cfg.timeout,
		lanes:       map[string]*lane{},
	}
}

// do queues req and waits for its result, its context, or shutdown. Called
// by any goroutine.
func (b *batcher) do(ctx context.Context, req wire.Request, ack string) (wire.Result, error) {
	if ctx.Err() != nil {
		return wire.Result{}, ctxErr(ctx, b.c.subj.Batch())
	}
	deadline, _ := ctx.Deadline() // none: stamped with the timeout once queued
	c := calls.Get().(*call)
	c.req, c.ack, c.size, c.deadline, c.done = req, ack, opSize(&req), deadline, ctx.Done()
	if !b.enqueue(b.c.destOf(req.Key), c) {
		c.release()
		return wire.Result{}, ErrClosed
	}
	if c.done == nil {
		// A context that never ends (context.Background): every call gets
		// its outcome (its deadline, shutdown), so a plain receive, which
		// costs a fraction of a select, is enough.
		<-c.out
		res, err := c.res, c.err
		c.release()
		return res, err
	}
	select {
	case <-c.out:
		res, err := c.res, c.err
		c.release()
		return res, err
	case <-c.done:
		// Its outcome may still come: c is not reused.
		return wire.Result{}, ctxErr(ctx, b.c.subj.Batch())
	}
}

// calls holds calls whose outcome was received, with their channel, for
// the next calls to reuse.
var calls = sync.Pool{New: func() any { return &call{out: make(chan struct{}, 1)} }}

// finish gives c its outcome and wakes its caller. Called once per call.
func (c *call) finish(res wire.Result, err error) {
	c.res, c.err = res, err
	c.out <- struct{}{} // buffered: this never blocks
}

// release gives c back to the pool; its outcome has been received (or was
// never due), and the batcher holds it no more.
func (c *call) release() {
	*c = call{out: c.out}
	calls.Put(c)
}

// enqueue adds c to dest's lane and starts a sender if the lane needs one.
// It reports false once the batcher is shut down.
func (b *batcher) enqueue(dest string, c *call) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	l := b.lanes[dest]
	if l == nil {
		l = &lane{dest: dest}
		b.lanes[dest] = l
	}
	l.q.push(c)
	l.waiting.Store(int32(l.q.len()))
	switch {
	case l.gathering > 0: // a sender takes the queue in a moment
	case l.busy == 0:
		b.startSender(l)
	case l.busy < b.maxInFlight && (l.q.len() >= b.maxOps || time.Since(l.active) >= stallAfter):
		b.startSender(l)
	default: // behind busy senders: its timeout runs from now
		c.stamp(time.Now(), b.timeout)
		b.watch(l)
	}
	return true
}

// watch arms l's timer, unless it is armed, while calls wait on l behind
// busy senders: to look for a stall when l may have another sender, else
// to fail the first call to reach its deadline. Called with b.mu held.
func (b *batcher) watch(l *lane) {
	switch {
	case l.armed || l.q.len() == 0:
	case l.busy < b.maxInFlight:
		b.armStall(l, stallAfter-time.Since(l.active))
	default:
		b.armStall(l, time.Until(l.q.earliest()))
	}
}

// startSender starts one more sender loop on l. Called with b.mu held.
func (b *batcher) startSender(l *lane) {
	l.busy++
	l.active = time.Now()
	b.senders.Add(1)
	go b.sendLoop(l)
}

// armStall makes checkStall look at l after d. Called with b.mu held.
func (b *batcher) armStall(l *lane, d time.Duration) {
	l.armed = true
	if l.stall == nil {
		l.stall = time.AfterFunc(d, func() { b.checkStall(l) })
		return
	}
	l.stall.Reset(d)
}

// checkStall fails the calls waiting on l past their deadline, then starts
// a sender for the others if none of l's batches has moved for stallAfter
// and l may have another, or looks again later (watch).
func (b *batcher) checkStall(l *lane) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l.armed = false
	if b.closed || b.lanes[l.dest] != l {
		return
	}
	dropped := l.q.expire(time.Now(), b.timeout)
	l.waiting.Store(int32(l.q.len()))
	b.expire(dropped) // buffered outcomes: this never blocks
	if l.q.len() > 0 && l.busy < b.maxInFlight && time.Since(l.active) >= stallAfter {
		b.startSender(l)
		return
	}
	b.watch(l)
}

// sendLoop sends l's waiting calls, a batch at a time, until none is left.
func (b *batcher) sendLoop(l *lane) {
	defer b.senders.Done()
	maxBytes := b.c.maxBatchBytes()
	var s sender
	for {
		b.mu.Lock()
		now := time.Now()
		var ack string
		var calls, dropped []*call
		if !b.closed { // shutdown fails what is queued
			ack, calls, dropped = l.q.next(b.maxOps, maxBytes, now, b.timeout)
			l.waiting.Store(int32(l.q.len()))
		}
		if len(calls) == 0 {
			b.retire(l)
			b.mu.Unlock()
			b.expire(dropped)
			return
		}
		l.active = now
		if l.q.len() >= b.maxOps && l.busy < b.maxInFlight {
			b.startSender(l) // a full batch is left behind this one
		}
		b.watch(l) // for the calls left behind this batch, if any
		b.mu.Unlock()
		b.expire(dropped)

		results, err := s.request(b, l.dest, ack, calls)
		// The callers about to be answered usually call again at once (a
		// loop of gets, a request handler's next lookup). Unless another
		// sender of the lane is about and no full batch waits, this one
		// stays to send their calls together with those that came
		// meanwhile (regather); otherwise it leaves them to the other.
		b.mu.Lock()
		l.active = time.Now()
		stay := l.busy == 1 || l.q.len()+len(calls) >= b.maxOps
		if stay {
			l.gathering++
		} else {
			b.retire(l)
			b.watch(l)
		}
		want := min(l.q.len()+len(calls), b.maxOps)
		b.mu.Unlock()
		s.answer(calls, results, err)
		if !stay {
			return
		}
		b.regather(l, want)
		b.mu.Lock()
		l.gathering--
		b.mu.Unlock()
	}
}

// retire ends one sender loop of l, and drops l from the lanes once it has
// neither sender nor call. Called with b.mu held.
func (b *batcher) retire(l *lane) {
	l.busy--
	if l.busy == 0 && l.q.len() == 0 && b.lanes[l.dest] == l {
		delete(b.lanes, l.dest)
	}
}

// regatherRounds bounds how long a sender waits for the callers it has
// just answered: this many yields of its goroutine, a few microseconds.
const regatherRounds = 16

// regather waits until want calls wait on l, or regatherRounds yields
// have passed: long enough for callers just answered to call again, so
// that their calls leave together in the next message instead of one by
// one. A caller that does not call again costs its sender the few yields;
// enqueue starts no sender and arms no timer while one regathers.
func (b *batcher) regather(l *lane, want int) {
	for range regatherRounds {
		if int(l.waiting.Load()) >= want {
			return
		}
		runtime.Gosched()
	}
}

// expire answers calls dropped unsent: their caller gave up, or their
// deadline passed while they waited.
func (b *batcher) expire(calls []*call) {
	for _, c := range calls {
		c.finish(wire.Result{}, timeoutErr(b.c.subj.Batch()))
	}
}

// sender is one sender loop's space, reused from batch to batch: the
// operations of a batch, and its results.
type sender struct {
	ops     []wire.Request
	results []wire.Result
}

// request makes one batch request to dest for calls and returns its
// results, one per call.
func (s *sender) request(b *batcher, dest, ack string, calls []*call) ([]wire.Result, error) {
	deadline := calls[0].deadline
	s.ops = s.ops[:0]
	for _, c := range calls {
		s.ops = append(s.ops, c.req)
		if c.deadline.After(deadline) {
			deadline = c.deadline
		}
	}
	ctx, cancel := context.WithDeadline(b.c.life, deadline)
	results, err := b.c.batchInto(ctx, dest, s.ops, ack, s.results)
	cancel()
	clear(s.ops) // hold on to no key or value
	return results, err
}

// answer hands each call its outcome: its result, or the batch's error.
func (s *sender) answer(calls []*call, results []wire.Result, err error) {
	for i, c := range calls {
		if err != nil {
			c.finish(wire.Result{}, err)
		} else {
			c.finish(results[i], nil)
		}
	}
	if err == nil {
		// The outcomes hold copies: reused for the next batch. A batch
		// has at most maxOps results, so this stays small.
		s.results = results
	}
}

// queued returns how many calls wait unsent, for tests.
func (b *batcher) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, l := range b.lanes {
		n += l.q.len()
	}
	return n
}

// shutdown fails every queued call with ErrClosed and returns once every
// sender has ended; batches in flight end at once, as the client's life
// context is over. Called once, by Client.Close, after that context ends.
func (b *batcher) shutdown() {
	b.mu.Lock()
	b.closed = true
	var queued []*call
	for _, l := range b.lanes {
		queued = append(queued, l.q.takeAll()...)
		l.waiting.Store(0)
		if l.stall != nil {
			l.stall.Stop()
		}
	}
	b.mu.Unlock()
	for _, c := range queued {
		c.finish(wire.Result{}, ErrClosed)
	}
	b.senders.Wait()
}

// queue is one lane's waiting calls, oldest first. It is not safe for
// concurrent use: batcher.mu guards it.
type queue struct {
	pending []*call
}

func (q *queue) push(c *call) { q.pending = append(q.pending, c) }

func (q *queue) len() int { return len(q.pending) }

// next removes and returns the next batch: the oldest waiting call, and the
// calls after it with the same ack mode, in order, up to maxOps calls and
// maxBytes of estimated size (a single call larger than maxBytes goes alone,
// and the node or NATS refuses it). Calls whose caller has given up, or
// whose deadline is before now, are removed unsent and returned as dropped.
// The other calls keep their place. Calls with no deadline yet get
// now+timeout.
func (q *queue) next(maxOps, maxBytes int, now time.Time, timeout time.Duration) (ack string, batch, dropped []*call) {
	dropped = q.expire(now, timeout)
	keep := q.pending[:0]
	bytes := 0
	for i, c := range q.pending {
		if len(batch) == maxOps {
			keep = append(keep, q.pending[i:]...)
			break
		}
		switch {
		case len(batch) == 0:
			ack = c.ack
			batch = make([]*call, 0, min(maxOps, len(q.pending)-i))
		case c.ack != ack || bytes+c.size > maxBytes:
			keep = append(keep, c)
			continue
		}
		batch = append(batch, c)
		bytes += c.size
	}
	clear(q.pending[len(keep):]) // let sent calls be collected
	q.pending = keep
	return ack, batch, dropped
}

// expire removes and returns the calls whose caller has given up or whose
// deadline is before now, and gives the others with no deadline yet
// now+timeout.
func (q *queue) expire(now time.Time, timeout time.Duration) (dropped []*call) {
	keep := q.pending[:0]
	for _, c := range q.pending {
		c.stamp(now, timeout)
		if c.overdue(now) {
			dropped = append(dropped, c)
		} else {
			keep = append(keep, c)
		}
	}
	clear(q.pending[len(keep):]) // let dropped calls be collected
	q.pending = keep
	return dropped
}

// earliest returns the earliest deadline of the waiting calls that have
// one; there must be one.
func (q *queue) earliest() time.Time {
	var t time.Time
	for _, c := range q.pending {
		if !c.deadline.IsZero() && (t.IsZero() || c.deadline.Before(t)) {
			t = c.deadline
		}
	}
	return t
}

// stamp gives a call with no deadline yet the deadline now+timeout.
func (c *call) stamp(now time.Time, timeout time.Duration) {
	if c.deadline.IsZero() {
		c.deadline = now.Add(timeout)
	}
}

// takeAll removes and returns every waiting call.
func (q *queue) takeAll() []*call {
	all := q.pending
	q.pending = nil
	return all
}

// overdue reports whether the call is not to be sent any more: its caller
// gave up, or its deadline is before now.
func (c *call) overdue(now time.Time) bool {
	return c.abandoned() || !c.deadline.IsZero() && now.After(c.deadline)
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
