package replicator

import (
	"context"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
)

// Ack modes of Write.
type AckMode uint8

const (
	AckPrimary AckMode = iota // answer once the primary applied the write
	AckAll                    // answer once every live owner applied it
)

// Write applies writes of partition p as its primary: apply runs under the
// partition's lock, makes the writes in the store and calls emit with the
// record of each one that changed something (not, e.g., a delete of an
// absent key). Each record gets the next ID of the term, and together they
// are published once to the replicas. With AckAll, Write returns once every
// replica applied them, or ErrAckTimeout. apply's error is returned; records
// it emitted are logged whatever it returns.
func (r *Replicator) Write(p int, ack AckMode, apply func(emit func(store.Record)) error) error {
	w, err := r.Submit(p, ack, apply)
	if err != nil {
		return err
	}
	return w.Wait()
}

// Pending is a write Submit applied and published, whose replicas' acks
// may still be due.
type Pending struct {
	r  *Replicator
	pt *part
	w  *waiter // nil = nothing to wait for
}

// Submit is Write that does not wait for the replicas: Pending.Wait does.
// A batch of writes over several partitions submits them all, then waits
// for them all, so that their acks travel at the same time.
func (r *Replicator) Submit(p int, ack AckMode, apply func(emit func(store.Record)) error) (Pending, error) {
	pt := r.parts[p]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	switch {
	case pt.role != rolePrimary:
		return Pending{}, ErrNotPrimary
	case !pt.ready:
		return Pending{}, ErrNotReady
	}
	err := apply(pt.emitFn)
	if len(pt.emitted) == 0 {
		return Pending{}, err
	}
	pt.mutations.Add(1)
	w, perr := r.append(pt, pt.emitted, ack == AckAll)
	clear(pt.emitted)
	pt.emitted = pt.emitted[:0]
	if err == nil {
		err = perr
	}
	return Pending{r: r, pt: pt, w: w}, err
}

// Wait returns once every replica applied the write, or ErrAckTimeout.
func (pw Pending) Wait() error {
	if pw.w == nil {
		return nil
	}
	t := time.NewTimer(pw.r.cfg.AckTimeout)
	defer t.Stop()
	select {
	case err := <-pw.w.done:
		return err
	case <-t.C:
		pt := pw.pt
		pt.mu.Lock()
		defer pt.mu.Unlock()
		if i := slices.Index(pt.waiters, pw.w); i >= 0 {
			pt.waiters = slices.Delete(pt.waiters, i, i+1)
			return ErrAckTimeout
		}
		return <-pw.w.done // answered meanwhile
	}
}

// append gives recs the next IDs of pt's term, keeps them in the log and
// publishes them to the replicas in one message; with wait, it returns the
// waiter of the replicas' acks (nil when there are no replicas). pt.mu is
// held.
func (r *Replicator) append(pt *part, recs []store.Record, wait bool) (*waiter, error) {
	if len(pt.replicas) == 0 {
		pt.seq += uint64(len(recs))
		return nil, nil // a replica that comes later starts from a snapshot
	}
	b := Batch{P: pt.p, Entries: make([]Entry, len(recs))}
	for i, rec := range recs {
		pt.seq++
		b.Entries[i] = entryOf(pt.p, ID{pt.term, pt.seq}, rec)
		pt.log.add(b.Entries[i])
	}
	data, err := wire.Marshal(&b)
	if err != nil {
		return nil, err
	}
	msg := &nats.Msg{Subject: r.cfg.Subjects.PartitionLog(pt.p), Data: data}
	var w *waiter
	if wait {
		msg.Reply = r.ackTo
		w = &waiter{seq: pt.seq, done: make(chan error, 1)}
		pt.waiters = append(pt.waiters, w)
	}
	if err := r.conn.PublishMsg(msg); err != nil {
		return nil, err
	}
	return w, nil
}

// onAck records a replica's acknowledgement.
func (r *Replicator) onAck(msg *nats.Msg) {
	var a Ack
	if err := wire.Unmarshal(msg.Data, &a); err != nil || a.P < 0 || a.P >= len(r.parts) {
		return
	}
	pt := r.parts[a.P]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.role != rolePrimary || a.Term != pt.term || a.Seq <= pt.acked[a.Node] {
		return
	}
	pt.acked[a.Node] = a.Seq
	pt.release()
}

// Ready reports whether this node leads partition p and takes its requests.
func (r *Replicator) Ready(p int) bool { return r.parts[p].serving.Load() }

// AwaitReady waits until this node takes partition p's requests as its
// primary. It returns ErrNotPrimary as soon as it does not lead p, and ctx's
// error when ctx ends first.
func (r *Replicator) AwaitReady(ctx context.Context, p int) error {
	pt := r.parts[p]
	for {
		pt.mu.Lock()
		role, ch := pt.role, pt.readyCh
		pt.mu.Unlock()
		if role != rolePrimary {
			return ErrNotPrimary
		}
		select {
		case <-ch:
			pt.mu.Lock()
			ok := pt.role == rolePrimary && pt.ready
			pt.mu.Unlock()
			if ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retryPause): // the role may have changed: look again
		}
	}
}

// becomePrimary makes this node pt's primary. owners are the partition's
// owners now, before those of the previous table. If it led the partition
// already, only the replicas change; otherwise it pulls the partition from
// every other node that may hold it, then starts a new term. pt.mu is held.
func (r *Replicator) becomePrimary(pt *part, owners, before []string) {
	replicas := owners[1:]
	if pt.role == rolePrimary {
		pt.replicas = slices.Clone(replicas)
		pt.release() // owners that went away are waited for no more
		return
	}
	if time.Now().Before(pt.fenced) && r.idOf(pt.fencedBy) != "" {
		return // taken over by another node, alive: our table is behind (the loop looks again)
	}
	pt.leave(ErrNotPrimary)
	pt.role = rolePrimary
	pt.setHolds(true)
	pt.replicas = slices.Clone(replicas)
	var sources []string
	for _, name := range append(slices.Clone(owners), before...) {
		if name != r.cfg.Name && !slices.Contains(sources, name) {
			sources = append(sources, name)
		}
	}
	if len(sources) == 0 {
		r.startTerm(pt) // nobody else holds it: a fresh partition
		return
	}
	gen := pt.gen
	r.background(func() { r.syncPrimary(pt, gen, sources) })
}

// startTerm makes pt ready under a new term, above every term it has seen.
// Terms come from the wall clock so that two primaries on two sides of a
// split pick different ones. pt.mu is held.
func (r *Replicator) startTerm(pt *part) {
	pt.term = max(pt.term+1, uint64(time.Now().UnixNano()))
	pt.seq = 0
	pt.log.reset()
	clear(pt.acked)
	pt.setReady(true)
}

// syncPrimary pulls partition pt from each source, merging by version, and
// then makes this node its ready primary. A source that does not answer is
// skipped: what it held and no other owner did is lost, as with any copy
// that dies.
func (r *Replicator) syncPrimary(pt *part, gen uint64, sources []string) {
	start := time.Now()
	pulled := 0
	for _, name := range sources {
		id := r.idOf(name)
		if id == "" {
			continue // not live
		}
		n, _, err := r.pull(pt.p, id, false, true)
		if err != nil {
			r.log.Debug("partition source did not answer", "partition", pt.p, "source", name, "err", err)
			continue
		}
		pulled += n
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.gen != gen {
		return
	}
	r.startTerm(pt)
	r.log.Debug("leading partition", "partition", pt.p, "term", pt.term, "records_pulled", pulled, "took", time.Since(start))
}

// serveFetch answers a replica's gap fetch from the log.
func (r *Replicator) serveFetch(req *Request) Response {
	pt := r.parts[req.P]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.role != rolePrimary || !pt.ready {
		return Response{Error: "not the ready primary"}
	}
	if req.Term != pt.term {
		return Response{Truncated: true, Head: ID{pt.term, pt.seq}}
	}
	entries, ok := pt.log.slice(req.First, req.Last)
	if !ok {
		return Response{Truncated: true, Head: ID{pt.term, pt.seq}}
	}
	return Response{Entries: entries, Head: ID{pt.term, pt.seq}}
}
