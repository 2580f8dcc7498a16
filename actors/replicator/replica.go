package replicator

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
)

// becomeReplica makes this node a replica of pt under primary. A replica
// that gets a new primary (or is new) subscribes to the log and syncs from
// the primary's snapshot; entries that arrive meanwhile wait in pending.
// pt.mu is held.
func (r *Replicator) becomeReplica(pt *part, primary string) {
	if pt.role == roleReplica && pt.primary == primary {
		return
	}
	pt.leave(ErrNotPrimary)
	pt.role, pt.primary = roleReplica, primary
	pt.setHolds(true)
	// A table that names another primary is past any takeover of this
	// node's copy: the fence is over, and a later table that names this
	// node primary again must be obeyed at once.
	pt.fenced = time.Time{}
	sub, err := r.conn.Subscribe(r.cfg.Subjects.PartitionLog(pt.p), func(m *nats.Msg) { r.onLog(pt, m) })
	if err != nil {
		r.log.Error("cannot follow partition log", "partition", pt.p, "err", err)
	} else {
		_ = sub.SetPendingLimits(-1, 256<<20)
		pt.sub = sub
	}
	r.startSync(pt)
}

// startSync runs a snapshot sync of replica pt from its primary. pt.mu is held.
func (r *Replicator) startSync(pt *part) {
	if pt.syncing {
		return
	}
	pt.syncing = true
	pt.setReady(false)
	gen := pt.gen
	r.background(func() { r.syncReplica(pt, gen) })
}

// syncReplica pulls the primary's snapshot of pt until it succeeds or the
// role changes, then continues from the snapshot's head.
func (r *Replicator) syncReplica(pt *part, gen uint64) {
	for {
		pt.mu.Lock()
		primary, stale := pt.primary, pt.gen != gen
		pt.mu.Unlock()
		if stale {
			return
		}
		if id := r.idOf(primary); id != "" {
			_, head, err := r.pull(pt.p, id, true, false)
			if err == nil {
				pt.mu.Lock()
				if pt.gen == gen {
					pt.syncing = false
					pt.term, pt.seq = head.Term, head.Seq
					r.drain(pt)
					pt.setReady(true)
					// Acknowledge the snapshot's head even if no entry asked
					// for it: ack=all writes the primary logged before this
					// replica subscribed wait for it, and are in the snapshot.
					pt.ackTo = r.cfg.Subjects.NodeAck(id)
					r.sendAck(pt)
				}
				pt.mu.Unlock()
				return
			}
		}
		if !r.sleep(retryPause) {
			return
		}
	}
}

// onLog applies one entry of pt's log.
func (r *Replicator) onLog(pt *part, msg *nats.Msg) {
	var b Batch
	if err := wire.Unmarshal(msg.Data, &b); err != nil || b.P != pt.p {
		return
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.role != roleReplica {
		return
	}
	if msg.Reply != "" {
		pt.ackTo = msg.Reply
	}
	for _, e := range b.Entries {
		if !r.onEntry(pt, e) {
			return
		}
	}
	r.sendAck(pt)
}

// onEntry applies one entry of pt's log in order, or keeps it for later; it
// returns false when the rest of its batch is to be ignored (a sync
// started). pt.mu is held.
func (r *Replicator) onEntry(pt *part, e Entry) bool {
	switch {
	case pt.syncing:
		// The snapshot decides where the log resumes; keep the entry until then.
		pt.pending[e.Seq] = e
		return true
	case e.Term < pt.term:
		// An old primary still talking (a split not yet seen): merge by
		// version, outside the log's order.
		r.applyRecord(e)
		return true
	case e.Term > pt.term:
		// A new term: its first entries follow whatever the new primary
		// pulled, which anti-entropy reconciles with what we hold.
		pt.term, pt.seq = e.Term, 0
		clear(pt.pending)
	}
	switch {
	case e.Seq <= pt.seq:
		// Already applied.
	case e.Seq == pt.seq+1:
		r.applyRecord(e)
		r.lag.record(e.Version, time.Now())
		pt.seq = e.Seq
		r.drain(pt)
	default:
		pt.pending[e.Seq] = e
		if len(pt.pending) > r.cfg.LogSize {
			r.startSync(pt) // too far behind for fetches
			return false
		}
		r.startFetch(pt)
	}
	return true
}

// drain applies the pending entries that now follow in order, and drops
// those that are older. pt.mu is held.
func (r *Replicator) drain(pt *part) {
	for s, e := range pt.pending {
		if e.Term != pt.term || s <= pt.seq {
			delete(pt.pending, s)
		}
	}
	for {
		e, ok := pt.pending[pt.seq+1]
		if !ok {
			return
		}
		delete(pt.pending, e.Seq)
		r.applyRecord(e)
		pt.seq = e.Seq
	}
}

// applyRecord merges one entry into the store by version.
func (r *Replicator) applyRecord(e Entry) bool {
	ok, err := r.st.Apply(e.record())
	if err != nil {
		r.log.Warn("cannot apply a replicated record", "key", e.Key, "err", err)
	}
	if ok && e.P >= 0 && e.P < len(r.parts) {
		r.parts[e.P].mutations.Add(1)
	}
	return ok
}

// sendAck tells the primary how far the replica applied, when an entry
// asked for it. pt.mu is held.
func (r *Replicator) sendAck(pt *part) {
	if pt.ackTo == "" || pt.syncing {
		return
	}
	data, err := wire.Marshal(&Ack{P: pt.p, Term: pt.term, Seq: pt.seq, Node: r.cfg.Name})
	if err == nil {
		_ = r.conn.Publish(pt.ackTo, data)
	}
	pt.ackTo = ""
}

// startFetch fetches the entries missing before the first pending one (or
// up to the primary's head). pt.mu is held.
func (r *Replicator) startFetch(pt *part) {
	if pt.fetching || pt.syncing {
		return
	}
	last := pt.head.Seq
	if pt.head.Term != pt.term {
		last = 0
	}
	for s := range pt.pending {
		if last == 0 || s-1 < last {
			last = s - 1
		}
	}
	if last <= pt.seq {
		return
	}
	pt.fetching = true
	gen, req := pt.gen, Request{Kind: kindFetch, P: pt.p, From: r.cfg.Name, Term: pt.term, First: pt.seq + 1, Last: last}
	primary := pt.primary
	r.background(func() { r.fetch(pt, gen, primary, req) })
}

// fetch asks the primary for a gap's entries and applies them.
func (r *Replicator) fetch(pt *part, gen uint64, primary string, req Request) {
	var resp Response
	err := r.ask(r.idOf(primary), &req, &resp)
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.gen != gen {
		return
	}
	pt.fetching = false
	switch {
	case err != nil || resp.Error != "":
		return // the heads check tries again
	case resp.Truncated:
		r.startSync(pt)
		return
	}
	if pt.term != req.Term {
		return
	}
	for _, e := range resp.Entries {
		if e.Seq == pt.seq+1 {
			r.applyRecord(e)
			pt.seq = e.Seq
		}
	}
	r.drain(pt)
	r.sendAck(pt)
	if len(pt.pending) > 0 {
		r.startFetch(pt)
	}
}

// announceHeads puts the last ID of every partition this node leads in its
// heartbeats.
func (r *Replicator) announceHeads() {
	h := heads{Heads: map[int]ID{}}
	for _, pt := range r.parts {
		pt.mu.Lock()
		if pt.role == rolePrimary && pt.ready {
			h.Heads[pt.p] = ID{pt.term, pt.seq}
		}
		pt.mu.Unlock()
	}
	if r.cfg.SetHeads == nil {
		return
	}
	if data, err := wire.Marshal(&h); err == nil {
		r.cfg.SetHeads(data)
	}
}

// checkHeads compares every replicated partition with the head its primary
// announced last, and fetches what is missing: the last entries of a burst
// may have been lost with nothing after them to reveal the gap.
func (r *Replicator) checkHeads() {
	if r.cfg.Members == nil {
		return
	}
	byName := map[string]map[int]ID{}
	for _, m := range r.cfg.Members().Live("") {
		var h heads
		if len(m.Extra) > 0 && wire.Unmarshal(m.Extra, &h) == nil {
			byName[m.Name] = h.Heads
		}
	}
	for _, pt := range r.parts {
		pt.mu.Lock()
		if pt.role == roleReplica && !pt.syncing {
			if head, ok := byName[pt.primary][pt.p]; ok {
				pt.head = head
				switch {
				case head.Term > pt.term:
					r.startSync(pt) // a term we saw nothing of
				case head.Term == pt.term && head.Seq > pt.seq:
					r.startFetch(pt)
				}
			}
		}
		pt.mu.Unlock()
	}
}

// becomeNone makes this node hold no copy of pt. Data it holds is pushed to
// the partition's primary and then dropped, in the background. pt.mu is held.
func (r *Replicator) becomeNone(pt *part, handover bool) {
	if pt.role == roleNone && (!pt.holds || pt.handingOver) {
		return
	}
	pt.leave(ErrNotPrimary)
	pt.fenced = time.Time{}
	if !handover {
		return
	}
	gen := pt.gen
	pt.handingOver = true
	r.handovers.Add(1)
	r.background(func() {
		defer r.handovers.Done()
		r.handover(pt, gen, r.cfg.Tick)
	})
}

// handover pushes this node's copy of pt to the partition's primary, then
// drops it, unless this node owns the partition again meanwhile. It waits
// delay first, so that writes applied here under the old table are in the
// copy it pushes.
func (r *Replicator) handover(pt *part, gen uint64, delay time.Duration) {
	if !r.sleep(delay) {
		return
	}
	deadline := time.Now().Add(10 * r.cfg.Tick)
	for {
		pt.mu.Lock()
		stale := pt.gen != gen
		pt.mu.Unlock()
		if stale {
			return
		}
		owners, ids := r.current(pt.p)
		if len(owners) == 0 {
			return // no server to take it: keep it (a proxy-only view)
		}
		err := r.push(pt.p, ids[owners[0]])
		if err == nil || time.Now().After(deadline) {
			if err != nil {
				r.log.Warn("dropping a partition its primary did not take", "partition", pt.p, "err", err)
			}
			break
		}
		if !r.sleep(retryPause) {
			return
		}
	}
	pt.mu.Lock()
	if pt.gen != gen {
		pt.mu.Unlock()
		return
	}
	pt.setHolds(false)
	pt.mu.Unlock()
	r.dropUnheld()
}

// dropUnheld removes from the store every key of a partition this node does
// not hold, in one pass over the store however many partitions were handed
// over: a call during a pass makes the pass run once more instead. A
// partition taken up again during the pass is safe: it is marked held
// before anything is pulled into it, and the pass reads the mark key by key
// under the key's shard lock.
func (r *Replicator) dropUnheld() {
	r.dropMu.Lock()
	if r.dropping {
		r.dropAgain = true
		r.dropMu.Unlock()
		return
	}
	r.dropping = true
	r.dropMu.Unlock()
	for {
		n := r.st.Drop(func(key string) bool { return !r.parts[r.partitionOf(key)].held.Load() })
		r.log.Debug("partitions handed over dropped", "keys_dropped", n)
		r.dropMu.Lock()
		if !r.dropAgain {
			r.dropping = false
			r.dropMu.Unlock()
			return
		}
		r.dropAgain = false
		r.dropMu.Unlock()
	}
}
