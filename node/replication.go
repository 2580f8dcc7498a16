package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/bus/wire"
)

// Writes go through the replicator (actors/replicator): it applies them to
// the store as the partition's primary, gives them log IDs and publishes
// them to the replicas. docs/replication.md tells the whole protocol.

// startReplicator makes the replicator; it needs the membership for the
// heads its heartbeats carry.
func (n *Node) startReplicator() error {
	n.repl = replicator.New(replicator.Config{
		Conn:        n.bus.Conn(),
		Subjects:    n.subj,
		Store:       n.store,
		Name:        n.cfg.Name,
		ID:          n.id,
		Partitions:  n.cfg.Partitions,
		Replicas:    n.cfg.Replicas,
		Members:     n.members.View,
		SetClaims:   n.members.SetExtra,
		LogBytes:    n.cfg.MaxMemory / 8, // 0 (unlimited memory) = the default
		AckTimeout:  n.cfg.AckTimeout,
		AntiEntropy: n.cfg.AntiEntropy,
		Heartbeat:   n.cfg.HeartbeatInterval,
		Logger:      n.log,
	})
	n.sequenceFeed() // the change feed announces what the replicator logs (changes_seq.go)
	if n.warm {
		// The snapshot may hold partitions this node does not own now: the
		// first table hands them over and drops them.
		n.repl.HoldAll()
	}
	if err := n.repl.Start(); err != nil {
		return fmt.Errorf("node: replicator: %w", err)
	}
	return nil
}

// ReplicationLag is how long after their primary this node's replicas
// applied the log entries received since the previous call (which resets
// it): for benchmarks and /metrics.
func (n *Node) ReplicationLag() replicator.Lag {
	if n.repl == nil {
		return replicator.Lag{}
	}
	return n.repl.Lag()
}

// ackMode converts a parsed ack header.
func ackMode(ack string) replicator.AckMode {
	if ack == wire.AckAll {
		return replicator.AckAll
	}
	return replicator.AckPrimary
}

// A write's path: the API front validates each op (writeOp) and hands the
// partition's ops to the replicator as one Submit; the replicator's core
// applies them to the store, logs them and publishes them to the replicas;
// Pending.Wait waits for the replicas' acks with ack=all.

// opGroup is the ops of one partition in a batch: indexes into its ops, in
// their order.
type opGroup struct {
	p   int
	idx []int
}

// groupByPartition groups the indexes of ops, refs in op order (of which p
// is each op's partition), by partition: one allocation for the batch
// instead of a map of slices.
func groupByPartition(refs []opRef) []opGroup {
	slices.SortStableFunc(refs, func(a, b opRef) int { return cmp.Compare(a.p, b.p) })
	idx := make([]int, len(refs))
	var groups []opGroup
	from := 0 // where the last group starts in idx
	for j, r := range refs {
		idx[j] = r.i
		if len(groups) == 0 || groups[len(groups)-1].p != r.p {
			groups = append(groups, opGroup{p: r.p})
			from = j
		}
		groups[len(groups)-1].idx = idx[from : j+1 : j+1]
	}
	return groups
}

// opRef is op i of a batch, of partition p.
type opRef struct{ p, i int }

// executeGroups runs the ops of the partitions this node leads, a group
// per partition. Each partition's ops run in order: a get reads the store,
// and each run of consecutive writes is one replicator write. The entries
// of every partition leave together when the first Wait flushes the
// replicator's outbox: one message per replica node
// (docs/replication.md, "Envelopes"). With ack=all the batch waits for the
// acks of every partition at once, at the end. The runs' buffers are cut
// from one allocation per batch (writeRuns).
func (n *Node) executeGroups(groups []opGroup, ops []wire.Request, ack string, results []wire.Result) {
	runs := newWriteRuns(len(ops), len(groups))
	for _, g := range groups {
		n.runPartition(g.p, g.idx, ops, ack, results, runs)
	}
	for _, w := range runs.waits {
		err := w.pending.Wait()
		for _, i := range w.idx {
			if err != nil && results[i].Code == wire.CodeOK {
				results[i] = errResult(n.replicationError(w.p, err))
			}
			n.metrics.doneResult(opKindOf(ops[i].Op), w.start, results[i])
		}
	}
}

// pendingRun is a run of writes submitted to the replicator whose acks
// may still be due.
type pendingRun struct {
	p       int
	idx     []int // indexes into the batch's ops
	pending replicator.Pending
	start   time.Time
}

// writeRuns holds a batch's runs of writes: their op indexes, replicator
// ops and results are cut from buffers as long as the batch, which never
// grow (a batch has no more writes than ops), so a run's slices stay
// valid until the batch is answered.
type writeRuns struct {
	idx   []int
	wops  []replicator.Op
	res   []replicator.OpResult
	waits []pendingRun
}

func newWriteRuns(ops, groups int) *writeRuns {
	return &writeRuns{idx: make([]int, 0, ops), wops: make([]replicator.Op, 0, ops),
		res: make([]replicator.OpResult, 0, ops), waits: make([]pendingRun, 0, groups)}
}

// runPartition runs the ops idx of partition p in order, submitting each
// run of consecutive writes at once, and adds the runs whose acks are due
// to runs.waits.
func (n *Node) runPartition(p int, idx []int, ops []wire.Request, ack string, results []wire.Result, runs *writeRuns) {
	start := time.Now()
	from := len(runs.idx) // the current run: runs.idx[from:], runs.wops[from:]
	for _, i := range idx {
		op := &ops[i]
		if op.Op == wire.OpGet && op.TTL == 0 { // a get with a TTL touches: a write
			from = n.submitRun(p, ack, ops, results, runs, from, start)
			results[i] = n.getResult(op.Key)
			continue
		}
		wop, err := n.writeOp(op, ack)
		if err != nil {
			results[i] = errResult(err)
			n.metrics.doneResult(opKindOf(op.Op), start, results[i])
			continue
		}
		runs.idx, runs.wops = append(runs.idx, i), append(runs.wops, wop)
	}
	n.submitRun(p, ack, ops, results, runs, from, start)
}

// submitRun submits the run of writes runs holds from index from on, if
// any, and returns where the next run starts.
func (n *Node) submitRun(p int, ack string, ops []wire.Request, results []wire.Result, runs *writeRuns, from int, start time.Time) int {
	to := len(runs.idx)
	if to == from {
		return to
	}
	run, wops := runs.idx[from:to:to], runs.wops[from:to:to]
	runs.res = runs.res[:to]
	res := runs.res[from:to:to]
	pw, err := n.submit(p, ack, wops, res)
	for j, i := range run {
		if err != nil {
			results[i] = errResult(n.replicationError(p, err))
		} else {
			results[i] = answerWrite(&ops[i], wops[j], res[j])
		}
	}
	runs.waits = append(runs.waits, pendingRun{p: p, idx: run, pending: pw, start: start})
	return to
}

// submit hands a run of writes of partition p to the replicator, waiting
// for the partition when this node leads it but is still pulling it in.
func (n *Node) submit(p int, ack string, ops []replicator.Op, results []replicator.OpResult) (replicator.Pending, error) {
	if n.repl == nil {
		for j, op := range ops {
			results[j] = n.writeLocal(op)
		}
		return replicator.Pending{}, nil
	}
	pw, err := n.repl.Submit(p, ackMode(ack), ops, results)
	if errors.Is(err, replicator.ErrNotReady) {
		n.repl.Flush() // what the batch submitted before leaves while this partition is pulled in
		if err = n.awaitPartition(p); err == nil {
			pw, err = n.repl.Submit(p, ackMode(ack), ops, results)
		}
	}
	return pw, err
}

// replicationError puts an error of the replicator in the API's words.
func (n *Node) replicationError(p int, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replicator.ErrNotReady), errors.Is(err, context.DeadlineExceeded):
		return &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("partition %d is still syncing on its new primary; retry shortly", p)}
	case errors.Is(err, replicator.ErrNotPrimary):
		return &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("partition %d is moving to another primary; retry shortly", p)}
	case errors.Is(err, replicator.ErrAckTimeout):
		return &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("ack=all: the primary applied the write but not every live owner of partition %d did within %s; it may or may not survive a failure of the primary", p, n.ackTimeout())}
	case errors.Is(err, replicator.ErrStopped):
		return &apiError{code: wire.CodeUnavailable, msg: "the node is stopping"}
	}
	return err
}

func (n *Node) ackTimeout() time.Duration {
	if n.cfg.AckTimeout > 0 {
		return n.cfg.AckTimeout
	}
	return replicator.DefaultAckTimeout
}

// awaitPartition waits until this node serves partition p as its primary,
// for at most forwardTimeout: a request that reaches a primary still
// pulling the partition in waits for it rather than reading an incomplete
// copy. Its errors are the replicator's (see replicationError).
func (n *Node) awaitPartition(p int) error {
	if n.repl == nil || n.repl.Ready(p) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	return n.repl.AwaitReady(ctx, p)
}

// handOver is the data side of a graceful leave: every partition this node
// holds is pushed to its primary in the table without it.
func (n *Node) handOver(wait time.Duration) {
	if n.repl == nil || n.members == nil {
		return
	}
	r := n.routing.Load()
	if r == nil {
		return
	}
	t := r.table.Without(n.cfg.Name)
	if t == nil {
		return // the last server: nobody to hand over to
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	if err := n.repl.HandOver(ctx, t, r.ids); err != nil {
		n.log.Warn("stopping before every partition was handed over", "waited", wait)
		return
	}
	n.log.Info("partitions handed over", "took", time.Since(start))
}
