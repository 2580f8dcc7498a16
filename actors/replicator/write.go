package replicator

import (
	"context"
	"time"
)

// Pending is a write Submit applied and published, whose replicas' acks
// may still be due.
type Pending struct {
	r  *Replicator
	pt *part
	id uint64
	ch chan error // nil: nothing to wait for
}

// Submit applies ops to partition p as its primary and queues them for
// the replicas in one batch; results gets one result per op. It does not
// wait for the replicas: Pending.Wait does, so that a batch over several
// partitions submits them all and then waits for all their acks at once.
// The batch leaves at the latest when Wait (or Flush) is called: with the
// batches of the other partitions submitted before, one message per
// replica node (outbox.go).
// It returns ErrNotPrimary or ErrNotReady when this node does not take the
// partition's writes.
func (r *Replicator) Submit(p int, ack AckMode, ops []Op, results []OpResult) (Pending, error) {
	pt := r.parts[p]
	w := Write{Ops: ops, Ack: ack, Results: results}
	var ch chan error
	pt.mu.Lock()
	if ack == AckAll {
		w.ID = r.writeIDs.Add(1)
		ch = make(chan error, 1)
		pt.waits[w.ID] = ch
	}
	err := pt.c.step(&w)
	if err != nil && ch != nil {
		delete(pt.waits, w.ID)
		ch = nil
	}
	r.perform(pt, nil)
	pt.mu.Unlock()
	return Pending{r: r, pt: pt, id: w.ID, ch: ch}, err
}

// Wait sends what was submitted so far (Flush), and returns once every
// live owner applied the write, ErrAckTimeout
// after Config.AckTimeout, or ErrNotPrimary when this node stopped leading
// the partition meanwhile (the write may or may not survive).
func (pw Pending) Wait() error {
	if pw.r == nil {
		return nil
	}
	pw.r.Flush()
	if pw.ch == nil {
		return nil
	}
	select {
	case err := <-pw.ch: // already acked: a batch's later partitions usually are, by the ack set that acked its first
		return err
	default:
	}
	t := time.NewTimer(pw.r.cfg.AckTimeout)
	defer t.Stop()
	select {
	case err := <-pw.ch:
		return err
	case <-t.C:
		pt := pw.pt
		pt.mu.Lock()
		defer pt.mu.Unlock()
		if _, waiting := pt.waits[pw.id]; waiting {
			delete(pt.waits, pw.id)
			_ = pt.c.step(CancelWrite{ID: pw.id})
			return ErrAckTimeout
		}
		return <-pw.ch // answered meanwhile
	}
}

// Write is Submit then Wait; with ctx it waits for a partition still
// being pulled in, until ctx ends.
func (r *Replicator) Write(ctx context.Context, p int, ack AckMode, ops []Op) ([]OpResult, error) {
	results := make([]OpResult, len(ops))
	for {
		pw, err := r.Submit(p, ack, ops, results)
		if err == ErrNotReady {
			if err = r.AwaitReady(ctx, p); err == nil {
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		return results, pw.Wait()
	}
}

// Unacked reports whether an ack=all write of any partition waits for a
// replica: when it does not, no read needs ReadBarrier (one atomic load,
// no hash of the key).
func (r *Replicator) Unacked() bool { return r.unackedParts.Load() > 0 }

// ReadBarrier returns once a read of key, of partition p, may be answered:
// no ack=all write of it is still waiting for a replica, so a reader never
// sees a value that could vanish with this primary. After within it fails
// with ErrAckTimeout. It costs one atomic load when no ack=all write of p
// waits.
func (r *Replicator) ReadBarrier(p int, key string, within time.Duration) error {
	pt := r.parts[p]
	var timeout <-chan time.Time
	for pt.unacked.Load() {
		pt.mu.Lock()
		ok, ch := pt.c.readable(key), pt.ackedCh
		pt.mu.Unlock()
		if ok {
			return nil
		}
		if timeout == nil {
			t := time.NewTimer(within)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-ch: // an ack, or a role change: look again
		case <-timeout:
			return ErrAckTimeout
		}
	}
	return nil
}

// Ready reports whether this node leads partition p and takes its requests.
func (r *Replicator) Ready(p int) bool { return r.parts[p].serving.Load() }

// AwaitReady waits until this node takes partition p's requests as its
// primary. It returns ErrNotPrimary as soon as it does not lead p, and
// ctx's error when ctx ends first.
func (r *Replicator) AwaitReady(ctx context.Context, p int) error {
	pt := r.parts[p]
	for {
		pt.mu.Lock()
		role, ch, fenced := pt.c.role, pt.readyCh, pt.c.fence != nil
		pt.mu.Unlock()
		if role != RolePrimary && !fenced {
			return ErrNotPrimary
		}
		select {
		case <-ch:
			if pt.serving.Load() {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.cfg.Tick): // the role may have changed: look again
		}
	}
}
