package node

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/bus"
	"github.com/roostkv/roost/node/partition"
)

// Forwarding: a node that is not the primary of an operation's partition
// sends it, as a one-partition BatchRequest, to the partition's subject
// (bus.Subjects.PartitionBatch), which only the primary subscribes to in its
// own view. The primary never forwards again, so a request crosses at most
// one hop. While a view change is in flight the subject may have no
// subscriber, or the receiver may have just let go of the partition; the
// forwarder then retries until forwardTimeout.

// forwardTimeout bounds a forwarded operation, retries included.
const forwardTimeout = 5 * time.Second

// forwardRetry is the pause between attempts while a partition has no primary.
const forwardRetry = 25 * time.Millisecond

// locate returns key's partition and whether this node executes it itself:
// it is the primary, or the cluster has no table yet.
func (n *Node) locate(key string) (p int, local bool) {
	r := n.routing.Load()
	p = partition.Of(key, n.cfg.Partitions)
	return p, r == nil || r.primary(p)
}

// forwardOne forwards a single operation and returns its result.
func (n *Node) forwardOne(p int, op bus.Request, ack string) bus.Result {
	results, err := n.forward(p, []bus.Request{op}, ack)
	if err != nil {
		return errResult(err)
	}
	return results[0]
}

// forward sends ops, all of partition p, to p's primary and returns their
// results in order.
func (n *Node) forward(p int, ops []bus.Request, ack string) ([]bus.Result, error) {
	data, err := bus.Marshal(&bus.BatchRequest{Ops: ops, Ack: ack})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	subject := n.subj.PartitionBatch(p)
	for {
		resp, err := n.bus.Conn().RequestWithContext(ctx, subject, data)
		switch {
		case err == nil && resp.Header.Get(micro.ErrorCodeHeader) == "":
			var br bus.BatchResponse
			if err := bus.Unmarshal(resp.Data, &br); err != nil || len(br.Results) != len(ops) {
				return nil, &apiError{code: bus.CodeInternal, msg: "malformed reply from the primary of partition " + strconv.Itoa(p)}
			}
			return br.Results, nil
		case err == nil && resp.Header.Get(micro.ErrorCodeHeader) != strconv.Itoa(bus.CodeUnavailable):
			code, _ := strconv.Atoi(resp.Header.Get(micro.ErrorCodeHeader))
			return nil, &apiError{code: code, msg: resp.Header.Get(micro.ErrorHeader)}
		case err != nil && !errors.Is(err, nats.ErrNoResponders):
			if ctx.Err() != nil {
				return nil, &apiError{code: bus.CodeUnavailable, msg: "partition " + strconv.Itoa(p) + "'s primary did not answer in time"}
			}
			return nil, &apiError{code: bus.CodeUnavailable, msg: err.Error()}
		}
		// No primary right now, or it just let go: wait for the view to settle.
		select {
		case <-ctx.Done():
			return nil, errNoPrimary(p)
		case <-time.After(forwardRetry):
		}
		if _, local := n.locate(ops[0].Key); local {
			// This node leads the partition now.
			results := make([]bus.Result, len(ops))
			for i := range ops {
				results[i] = n.apply(&ops[i], ack)
			}
			return results, nil
		}
	}
}

// handlePartitionBatch serves a forwarded BatchRequest on a partition's
// subject: applied here if this node leads the partition in its own view,
// else a 503 so that the forwarder retries.
func (n *Node) handlePartitionBatch(msg *nats.Msg) {
	var br bus.BatchRequest
	if err := bus.Unmarshal(msg.Data, &br); err != nil {
		respondMsgError(msg, errBadRequest("malformed batch: %v", err))
		return
	}
	resp := bus.BatchResponse{Results: make([]bus.Result, len(br.Ops))}
	for i := range br.Ops {
		if _, local := n.locate(br.Ops[i].Key); !local {
			respondMsgError(msg, &apiError{code: bus.CodeUnavailable, msg: "not the primary of this partition any more"})
			return
		}
		resp.Results[i] = n.apply(&br.Ops[i], br.Ack)
	}
	data, err := bus.Marshal(&resp)
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
func (n *Node) executeBatch(ops []bus.Request, ack string) []bus.Result {
	results := make([]bus.Result, len(ops))
	remote := map[int][]int{} // partition -> indexes of its ops
	for i := range ops {
		if err := n.checkKey(ops[i].Key); err != nil {
			results[i] = errResult(err)
			continue
		}
		if p, local := n.locate(ops[i].Key); !local {
			remote[p] = append(remote[p], i)
			continue
		}
		results[i] = n.apply(&ops[i], ack)
	}
	var wg sync.WaitGroup
	for p, idx := range remote {
		wg.Go(func() {
			part := make([]bus.Request, len(idx))
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
	return results
}
