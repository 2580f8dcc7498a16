package node

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus"
)

// The binary API: msgpack batches and prefix scans (docs/PROTOCOL.md).

// Limits of the binary API.
const (
	maxBatchOps      = 10000 // operations in one BatchRequest
	defaultScanLimit = 1000  // keys in one scan page when the request says 0
	maxScanLimit     = 10000 // keys in one scan page at most
)

func (n *Node) handleBatch(req micro.Request) {
	var br bus.BatchRequest
	if err := bus.Unmarshal(req.Data(), &br); err != nil {
		respondError(req, errBadRequest("malformed batch: %v", err))
		return
	}
	if len(br.Ops) > maxBatchOps {
		respondError(req, errTooLarge("batch of %d operations is over the limit of %d", len(br.Ops), maxBatchOps))
		return
	}
	if _, err := parseAck(br.Ack); err != nil {
		respondError(req, err)
		return
	}
	resp := bus.BatchResponse{Results: make([]bus.Result, len(br.Ops))}
	budget := n.maxPayload - replyReserve
	for i := range br.Ops {
		r := n.apply(&br.Ops[i], br.Ack)
		// A get whose value no longer fits in the reply fails alone, so the
		// other operations sharing the message still succeed; asked alone,
		// it fits (MaxValue is below the bus limit).
		size := int64(len(r.Value)) + resultOverhead
		if size > budget && len(r.Value) > 0 {
			r = bus.Result{Code: bus.CodeTooLarge, Error: ErrReplyFull.Error()}
			size = resultOverhead
		}
		budget -= size
		resp.Results[i] = r
	}
	n.respondMsgpack(req, &resp)
}

// ErrReplyFull is the reason a get in a batch fails when the values before
// it already fill the reply; the same get alone succeeds.
var ErrReplyFull = errors.New("reply full: the values before this key fill the message; get it in a smaller batch")

// Reply sizing: room kept for msgpack framing, and per-result overhead
// beyond the value.
const (
	replyReserve   = 1024
	resultOverhead = 64
)

// apply runs one operation of a batch. Values decoded by msgpack are fresh
// allocations, so the store may keep them as they are.
func (n *Node) apply(op *bus.Request, ack string) bus.Result {
	switch op.Op {
	case bus.OpGet:
		e, err := n.get(op.Key)
		if err != nil {
			return errResult(err)
		}
		return bus.Result{Code: bus.CodeOK, Value: e.Value, Version: e.Version, Flags: e.Flags, Expires: unixMilli(e.Expires)}
	case bus.OpSet:
		if op.TTL < 0 {
			return errResult(errBadRequest("negative TTL %d ms", op.TTL))
		}
		if op.TTL > MaxTTL.Milliseconds() {
			return errResult(errBadRequest("TTL %d ms is over the limit of %d", op.TTL, MaxTTL.Milliseconds()))
		}
		sr := store.SetRequest{Key: op.Key, Value: op.Value, Flags: op.Flags, TTL: time.Duration(op.TTL) * time.Millisecond}
		if sr.Value == nil {
			sr.Value = []byte{}
		}
		if op.CAS != nil {
			sr.CAS, sr.CheckCAS = *op.CAS, true
		}
		e, err := n.set(sr, ack)
		if err != nil {
			return errResult(err)
		}
		return bus.Result{Code: bus.CodeOK, Version: e.Version}
	case bus.OpDel:
		dr := store.DeleteRequest{Key: op.Key}
		if op.CAS != nil {
			dr.CAS, dr.CheckCAS = *op.CAS, true
		}
		v, err := n.del(dr, ack)
		if err != nil {
			return errResult(err)
		}
		return bus.Result{Code: bus.CodeOK, Version: v}
	}
	return errResult(errBadRequest("unknown operation %d: want 1 (get), 2 (set) or 3 (del)", op.Op))
}

func errResult(err error) bus.Result {
	return bus.Result{Code: uint16(codeOf(err)), Error: err.Error()}
}

func (n *Node) handleScan(req micro.Request) {
	var sr bus.ScanRequest
	if err := bus.Unmarshal(req.Data(), &sr); err != nil {
		respondError(req, errBadRequest("malformed scan: %v", err))
		return
	}
	limit := sr.Limit
	switch {
	case limit < 0:
		respondError(req, errBadRequest("negative scan limit %d", limit))
		return
	case limit == 0:
		limit = defaultScanLimit
	case limit > maxScanLimit:
		limit = maxScanLimit
	}
	entries, more := n.store.Scan(sr.Prefix, sr.After, limit, sr.KeysOnly)
	resp := bus.ScanResponse{Entries: make([]bus.Entry, 0, len(entries)), More: more}
	// Keep the page under the bus payload limit: cut it short and say More.
	budget := n.maxPayload - replyReserve
	for _, e := range entries {
		size := int64(len(e.Key)+len(e.Value)) + resultOverhead
		if budget -= size; budget < 0 && len(resp.Entries) > 0 {
			resp.More = true
			break
		}
		be := bus.Entry{Key: e.Key, Version: e.Version, Flags: e.Flags, Expires: unixMilli(e.Expires)}
		if !sr.KeysOnly {
			be.Value = e.Value
		}
		resp.Entries = append(resp.Entries, be)
	}
	n.respondMsgpack(req, &resp)
}

func (n *Node) respondMsgpack(req micro.Request, v any) {
	data, err := bus.Marshal(v)
	if err != nil {
		respondError(req, &apiError{code: bus.CodeInternal, msg: err.Error()})
		return
	}
	if int64(len(data)) > n.maxPayload {
		respondError(req, errTooLarge("reply of %d bytes is over the bus limit of %d: ask for fewer keys", len(data), n.maxPayload))
		return
	}
	_ = req.Respond(data)
}

// unixMilli converts an expiry in Unix nanoseconds to milliseconds, keeping 0.
func unixMilli(nanos int64) int64 {
	if nanos == 0 {
		return 0
	}
	return time.Unix(0, nanos).UnixMilli()
}
