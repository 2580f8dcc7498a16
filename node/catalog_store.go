package node

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
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

// readCatalog reads every live record of the catalog, blocking as b says,
// and returns them with the catalog's index: the highest version under its
// prefix, deletes included.
func (n *Node) readCatalog(ctx context.Context, b blocking) ([]catalogEntry, uint64, error) {
	res, err := n.queryCatalog(ctx, b)
	if err != nil {
		return nil, 0, err
	}
	r := n.routing.Load()
	if r == nil {
		return nil, res.index, nil
	}
	out := make([]catalogEntry, 0, len(res.entries))
	decoded := n.agent.cache.decoded()
	fresh := make(map[string]decodedRecord, len(res.entries))
	defer n.agent.cache.keepDecoded(fresh)
	for _, e := range res.entries {
		d, ok := decoded[e.Key]
		if !ok || d.version != e.Version {
			d = decodedRecord{version: e.Version}
			if err := json.Unmarshal(e.Value, &d.rec); err != nil {
				n.log.Warn("catalog: unreadable record", "key", strings.TrimPrefix(e.Key, svcPrefix), "err", err)
				continue
			}
		}
		fresh[e.Key] = d
		rec := d.rec // shared with other reads: read only
		m, live := liveRecord(r.view, &rec)
		if !live {
			continue // its node died or left: catalog_sweep.go deletes it
		}
		out = append(out, catalogEntry{rec: rec, member: m, created: e.Created, version: e.Version})
	}
	return out, res.index, nil
}

// catalogReadAttempt bounds one read of the catalog's keys across the
// nodes. A node that dies while it is asked never answers; the read is
// tried again, with the nodes alive then, rather than wait the whole
// forwardTimeout for it: so a reader learns of a node's death at about the
// time the cluster does.
const catalogReadAttempt = time.Second

// queryCatalog reads the catalog's keys as a blocking KV prefix query does
// (kv_block.go's queryKV), each read tried in attempts of
// catalogReadAttempt for up to forwardTimeout.
func (n *Node) queryCatalog(ctx context.Context, b blocking) (kvResult, error) {
	q := kvQuery{key: svcPrefix, prefix: true}
	w := n.feed.waiters.add(q.key, q.prefix) // before reading: no change after the read goes unheard
	defer n.feed.waiters.remove(w)
	timer := time.NewTimer(b.wait)
	defer timer.Stop()
	final := b.index == 0
	for {
		res, ready, err := n.readCatalogKeys(ctx, q, b.index, final)
		if err != nil || ready {
			return res, err
		}
		select {
		case <-w.wake: // a change of the catalog: read again
		case <-timer.C: // the wait is over: answer with what there is
			final = true
		case <-n.feed.waiters.stopping(): // the node stops: answer now
			final = true
		case <-ctx.Done(): // the client went away
			return kvResult{}, ctx.Err()
		}
	}
}

// readCatalogKeys is readKV in attempts of catalogReadAttempt, again while
// a node does not answer, for up to forwardTimeout.
func (n *Node) readCatalogKeys(ctx context.Context, q kvQuery, min uint64, final bool) (kvResult, bool, error) {
	start := time.Now()
	if res, ok := n.agent.cache.get(start); ok { // catalog_cache.go
		return res, final || res.index > min, nil
	}
	deadline := start.Add(forwardTimeout)
	for {
		actx, cancel := context.WithTimeout(ctx, catalogReadAttempt)
		res, ready, err := n.readKV(actx, q, min, final)
		cancel()
		if err == nil && ready {
			n.agent.cache.put(res, start)
		}
		if codeOf(err) != wire.CodeUnavailable || ctx.Err() != nil || time.Now().After(deadline) {
			return res, ready, err
		}
		select {
		case <-ctx.Done():
			return res, ready, err
		case <-time.After(forwardRetry):
		}
	}
}
