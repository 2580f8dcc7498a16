package node

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
)

// Roost's own writes of reserved keys (reserved.go), such as the service
// catalog's. Every API refuses these keys (checkKey), so they take a path
// of their own through the same replicator: at the key's primary they are
// submitted to the replicator as any write is (replicated, logged, on the
// change feed); elsewhere they are forwarded to the primary on the
// partition's subject, marked with the header reservedHeader, which
// serveReserved accepts for reserved keys only. The header is not a guard
// against a malicious client (any client with the token may publish on
// node-to-node subjects); the refusal in checkKey keeps users' keys and
// Roost's apart, and that is what it is for.

// reservedHeader marks a forwarded batch of reserved-key writes.
const reservedHeader = "Roost-Reserved"

// reservedWrite is one write of a reserved key: a set of value, or a delete
// (if del), conditional on version cas when checkCAS.
type reservedWrite struct {
	key      string
	value    []byte
	del      bool
	cas      uint64
	checkCAS bool
}

// writeReserved applies w at its key's primary with ack=all, within ctx,
// retrying while the partition has no primary.
func (n *Node) writeReserved(ctx context.Context, w reservedWrite) error {
	if !reserved(w.key) {
		return errBadRequest("key %q is not a reserved key", w.key)
	}
	op := wire.Request{Op: wire.OpSet, Key: w.key, Value: w.value}
	if w.del {
		op = wire.Request{Op: wire.OpDel, Key: w.key}
	}
	if w.checkCAS {
		op.CAS = &w.cas
	}
	for {
		p, local := n.locate(w.key)
		var res wire.Result
		if local {
			res = n.applyReserved(p, op)
		} else {
			res = n.forwardReserved(ctx, p, op)
		}
		if res.Code == wire.CodeOK {
			return nil
		}
		err := &apiError{code: int(res.Code), msg: res.Error}
		if res.Code != wire.CodeUnavailable || ctx.Err() != nil {
			return err
		}
		select { // no primary right now, or it just let go: again
		case <-ctx.Done():
			return err
		case <-time.After(forwardRetry):
		}
	}
}

// applyReserved runs one write of a reserved key of partition p, which this
// node leads, and waits for its replicas (ack=all).
func (n *Node) applyReserved(p int, op wire.Request) wire.Result {
	var rop replicator.Op
	if op.Op == wire.OpDel {
		rop.Del = &store.DeleteRequest{Key: op.Key}
		if op.CAS != nil {
			rop.Del.CAS, rop.Del.CheckCAS = *op.CAS, true
		}
	} else {
		rop.Set = &store.SetRequest{Key: op.Key, Value: op.Value}
		if op.CAS != nil {
			rop.Set.CAS, rop.Set.CheckCAS = *op.CAS, true
		}
	}
	res := make([]replicator.OpResult, 1)
	pw, err := n.submit(p, wire.AckAll, []replicator.Op{rop}, res)
	if err == nil {
		err = pw.Wait()
	}
	if err != nil {
		return errResult(n.replicationError(p, err))
	}
	return writeResult(rop, res[0])
}

// forwardReserved sends one reserved write to partition p's primary and
// returns its result; a primary that does not answer is a 503.
func (n *Node) forwardReserved(ctx context.Context, p int, op wire.Request) wire.Result {
	data, err := wire.Marshal(&wire.BatchRequest{Ops: []wire.Request{op}, Ack: wire.AckAll})
	if err != nil {
		return errResult(err)
	}
	msg := nats.NewMsg(n.subj.PartitionBatch(p))
	msg.Header.Set(reservedHeader, "1")
	msg.Data = data
	actx, cancel := context.WithTimeout(ctx, forwardTimeout+n.ackTimeout())
	defer cancel()
	resp, err := n.bus.Conn().RequestMsgWithContext(actx, msg)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return errResult(errNoPrimary(p))
	case err != nil:
		return errResult(&apiError{code: wire.CodeUnavailable, msg: "partition " + strconv.Itoa(p) + "'s primary did not answer: " + err.Error()})
	case resp.Header.Get(micro.ErrorCodeHeader) != "":
		code, _ := strconv.Atoi(resp.Header.Get(micro.ErrorCodeHeader))
		return wire.Result{Code: uint16(code), Error: resp.Header.Get(micro.ErrorHeader)}
	}
	var br wire.BatchResponse
	if err := wire.Unmarshal(resp.Data, &br); err != nil || len(br.Results) != 1 {
		return errResult(&apiError{code: wire.CodeInternal, msg: "malformed reply from the primary of partition " + strconv.Itoa(p)})
	}
	return br.Results[0]
}

// serveReserved answers a forwarded batch of reserved-key writes
// (handlePartitionBatch hands it over): every key must be reserved, and of
// a partition this node leads now.
func (n *Node) serveReserved(msg *nats.Msg) {
	var br wire.BatchRequest
	if err := wire.Unmarshal(msg.Data, &br); err != nil {
		respondMsgError(msg, errBadRequest("malformed batch: %v", err))
		return
	}
	resp := wire.BatchResponse{Results: make([]wire.Result, len(br.Ops))}
	for i, op := range br.Ops {
		if !reserved(op.Key) || op.Op == wire.OpGet {
			resp.Results[i] = errResult(errBadRequest("key %q: only writes of reserved keys may carry %s", op.Key, reservedHeader))
			continue
		}
		p, local := n.locate(op.Key)
		if !local && n.leadsSyncing(p) && n.awaitPartition(p) == nil {
			local = true
		}
		if !local {
			respondMsgError(msg, &apiError{code: wire.CodeUnavailable, msg: "not the primary of this partition any more"})
			return
		}
		resp.Results[i] = n.applyReserved(p, op)
	}
	data, err := wire.Marshal(&resp)
	if err != nil {
		respondMsgError(msg, err)
		return
	}
	_ = msg.Respond(data)
}
