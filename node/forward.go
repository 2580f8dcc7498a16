package node

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// Forwarding: a node that is not the primary of an operation's partition
// sends it, as a one-partition BatchRequest, to the partition's subject
// (wire.Subjects.PartitionBatch), which only the primary subscribes to in its
// own view. The primary never forwards again, so a request crosses at most
// one hop. While a view change is in flight the subject may have no
// subscriber, or the receiver may have just let go of the partition; the
// forwarder then retries until forwardTimeout.
//
// Bounds (docs/cluster.md, "Bounds"): every wait of a forwarded operation
// — for a partition this node leads to be pulled in, for a primary to
// appear, for the primary's answer — comes out of one budget,
// forwardTimeout, after which the operation fails with 503. An ack=all
// write's primary may answer up to --ack-timeout after it applied the
// write: its answer is awaited that much longer.

// forwardTimeout bounds a forwarded operation, retries included; an ack=all
// write is awaited up to --ack-timeout more (forward).
const forwardTimeout = 5 * time.Second

// forwardRetry is the pause between attempts while a partition has no primary.
const forwardRetry = 25 * time.Millisecond

// forwardAttempt bounds one attempt of a forward that may be sent again
// (retrySafe): a request sent while its partition's primary moves can be
// dropped by the server, unanswered.
const forwardAttempt = time.Second

// retrySafe reports whether ops may be sent again after an attempt timed
// out: only reads. A write that timed out may have been applied, and
// applying it again later could undo a write made in between; it fails
// with 503 (outcome unknown) instead.
func retrySafe(ops []wire.Request) bool {
	for i := range ops {
		if ops[i].Op != wire.OpGet {
			return false
		}
	}
	return true
}

// locate returns key's partition and whether this node executes it itself:
// it is the primary and has the partition's data (or the cluster has no
// table yet). A primary still pulling a partition in serves it through the
// partition subject, where requests wait for it (handlePartitionBatch).
func (n *Node) locate(key string) (p int, local bool) {
	r := n.routing.Load()
	p = partition.Of(key, n.cfg.Partitions)
	return p, !n.leaving.Load() && (r == nil || r.primary(p) && (n.repl == nil || n.repl.Ready(p)))
}

// leadsSyncing reports whether this node leads partition p in its own view
// but is still pulling it in from the other owners.
func (n *Node) leadsSyncing(p int) bool {
	r := n.routing.Load()
	return n.repl != nil && r != nil && r.primary(p) && !n.leaving.Load() && !n.repl.Ready(p)
}

// applyAll applies ops, all of a partition this node leads, one by one.
func (n *Node) applyAll(ops []wire.Request, ack string) []wire.Result {
	results := make([]wire.Result, len(ops))
	for i := range ops {
		results[i] = n.apply(&ops[i], ack)
	}
	return results
}

// forwardOne forwards a single operation and returns its result.
func (n *Node) forwardOne(p int, op wire.Request, ack string) wire.Result {
	results, err := n.forward(p, []wire.Request{op}, ack)
	if err != nil {
		return errResult(err)
	}
	return results[0]
}

// forward sends ops, all of partition p, to p's primary and returns their
// results in order, within forwardTimeout (plus --ack-timeout for an ack=all
// write): then it fails with 503.
func (n *Node) forward(p int, ops []wire.Request, ack string) ([]wire.Result, error) {
	deadline := time.Now().Add(forwardTimeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if n.leadsSyncing(p) {
		// This node leads p and is pulling it in: no trip over the bus
		// back to itself once it has.
		switch err := n.repl.AwaitReady(ctx, p); {
		case err == nil:
			return n.applyAll(ops, ack), nil
		case ctx.Err() != nil:
			return nil, n.replicationError(p, err)
		}
		// It let go of p meanwhile: forward to the new primary.
	}
	data, err := wire.Marshal(&wire.BatchRequest{Ops: ops, Ack: ack})
	if err != nil {
		return nil, err
	}
	n.metrics.forwarded.Add(uint64(len(ops)))
	retry := retrySafe(ops)
	answerBy := deadline // the primary's answer to a write sent now
	if ack == wire.AckAll && !retry {
		answerBy = deadline.Add(n.ackTimeout()) // it waits for the replicas after applying
	}
	subject := n.subj.PartitionBatch(p)
	attempt := forwardAttempt
	if retry && n.mayLoadAny(ops) {
		// The primary may wait for a loader up to --load-timeout: an
		// attempt sent again before would start a second load (load.go).
		attempt += n.cfg.LoadTimeout
	}
	for {
		var actx context.Context
		var acancel context.CancelFunc
		if retry {
			actx, acancel = context.WithTimeout(ctx, attempt)
		} else {
			actx, acancel = context.WithDeadline(context.Background(), answerBy)
		}
		resp, err := n.bus.Conn().RequestWithContext(actx, subject, data)
		acancel()
		switch {
		case err == nil && resp.Header.Get(micro.ErrorCodeHeader) == "":
			var br wire.BatchResponse
			if err := wire.Unmarshal(resp.Data, &br); err != nil || len(br.Results) != len(ops) {
				return nil, &apiError{code: wire.CodeInternal, msg: "malformed reply from the primary of partition " + strconv.Itoa(p)}
			}
			return br.Results, nil
		case err == nil && resp.Header.Get(micro.ErrorCodeHeader) != strconv.Itoa(wire.CodeUnavailable):
			code, _ := strconv.Atoi(resp.Header.Get(micro.ErrorCodeHeader))
			return nil, &apiError{code: code, msg: resp.Header.Get(micro.ErrorHeader)}
		case err != nil && retry && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			// Lost on its way to a primary that just let go (the server
			// drops a queue message whose member left meanwhile), or with
			// a primary that died: again.
		case errors.Is(err, context.DeadlineExceeded):
			return nil, &apiError{code: wire.CodeUnavailable, msg: "partition " + strconv.Itoa(p) + "'s primary did not answer in time (it may have died): the outcome is unknown"}
		case err != nil && !errors.Is(err, nats.ErrNoResponders):
			return nil, &apiError{code: wire.CodeUnavailable, msg: err.Error()}
		}
		// No primary right now, or it just let go: wait for the view to settle.
		select {
		case <-ctx.Done():
			return nil, errNoPrimary(p)
		case <-time.After(forwardRetry):
		}
		if _, local := n.locate(ops[0].Key); local {
			// This node leads the partition now.
			return n.applyAll(ops, ack), nil
		}
	}
}

// handlePartitionBatch serves a forwarded BatchRequest on a partition's
// subject: applied here if this node leads the partition in its own view,
// else a 503 so that the forwarder retries.
func (n *Node) handlePartitionBatch(msg *nats.Msg) {
	if msg.Header.Get(reservedHeader) != "" {
		n.async.Go(func() { n.serveReserved(msg) }) // Roost's own keys (reserved_write.go)
		return
	}
	var br wire.BatchRequest
	if err := wire.Unmarshal(msg.Data, &br); err != nil {
		respondMsgError(msg, errBadRequest("malformed batch: %v", err))
		return
	}
	loading := n.mayLoadAny(br.Ops)
	if br.Ack == wire.AckAll || len(br.Ops) > 0 && n.leadsSyncing(partition.Of(br.Ops[0].Key, n.cfg.Partitions)) || loading {
		// It waits for the replicas, for the partition to be pulled in, or
		// for a loader (load.go):
		// not on the subscription's goroutine, where the partition's other
		// requests would queue behind it.
		n.async.Go(func() {
			if loading {
				n.prefetchLoads(br.Ops) // the batch's missing keys load at once (load.go)
			}
			n.servePartitionBatch(msg, &br)
		})
		return
	}
	n.servePartitionBatch(msg, &br)
}

// servePartitionBatch executes a forwarded batch and answers it.
func (n *Node) servePartitionBatch(msg *nats.Msg, br *wire.BatchRequest) {
	local := make([]opRef, 0, len(br.Ops))
	for i := range br.Ops {
		p, here := n.locate(br.Ops[i].Key)
		if !here && n.leadsSyncing(p) && n.awaitPartition(p) == nil {
			// Leading it, but it was still pulling it in: it waited rather
			// than answer from an incomplete copy.
			here = true
		}
		if !here {
			respondMsgError(msg, &apiError{code: wire.CodeUnavailable, msg: "not the primary of this partition any more"})
			return
		}
		local = append(local, opRef{p: p, i: i})
	}
	resp := wire.BatchResponse{Results: make([]wire.Result, len(br.Ops))}
	n.executeGroups(groupByPartition(local), br.Ops, br.Ack, resp.Results)
	data, err := wire.Marshal(&resp)
	if err != nil {
		respondMsgError(msg, err)
		return
	}
	_ = msg.Respond(data)
}

// respondMsgError answers a plain NATS request with the micro error headers.
func respondMsgError(msg *nats.Msg, err error) {
	reply := nats.NewMsg(msg.Reply)
	reply.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(codeOf(err)))
	reply.Header.Set(micro.ErrorHeader, err.Error())
	_ = msg.RespondMsg(reply)
}

// executeBatch runs ops in order semantics per key: local ones here, the
// others forwarded per partition, concurrently.
func (n *Node) executeBatch(ops []wire.Request, ack string) []wire.Result {
	results := make([]wire.Result, len(ops))
	var remote map[int][]int // partition -> indexes of its ops
	local := make([]opRef, 0, len(ops))
	for i := range ops {
		if err := n.checkKey(ops[i].Key); err != nil {
			results[i] = errResult(err)
			continue
		}
		p, here := n.locate(ops[i].Key)
		if here {
			local = append(local, opRef{p: p, i: i})
		} else {
			if remote == nil {
				remote = map[int][]int{}
			}
			remote[p] = append(remote[p], i)
		}
	}
	n.executeGroups(groupByPartition(local), ops, ack, results)
	if len(remote) > 0 {
		n.executeRemote(remote, ops, ack, results)
	}
	return results
}

// executeRemote forwards the ops of each partition of remote to its
// primary, concurrently, and fills in their results.
func (n *Node) executeRemote(remote map[int][]int, ops []wire.Request, ack string, results []wire.Result) {
	var wg sync.WaitGroup
	for p, idx := range remote {
		wg.Go(func() {
			part := make([]wire.Request, len(idx))
			for j, i := range idx {
				part[j] = ops[i]
			}
			res, err := n.forward(p, part, ack)
			for j, i := range idx {
				if err != nil {
					results[i] = errResult(err)
				} else {
					results[i] = res[j]
				}
			}
		})
	}
	wg.Wait()
}
