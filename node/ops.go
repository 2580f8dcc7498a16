package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// The operations every API (NATS text, NATS binary, HTTP) goes through, so
// that limits and error codes are the same whichever door a request used.

// checkKey refuses, with a 400, a key no API may use: empty, over
// --max-key, in the reserved key space (reserved.go), or with a NATS
// wildcard token (wildcardToken).
func (n *Node) checkKey(key string) error {
	if key == "" {
		return errBadRequest("empty key")
	}
	if len(key) > n.cfg.MaxKey {
		return errBadRequest("key of %d bytes is over the limit of %d", len(key), n.cfg.MaxKey)
	}
	if reserved(key) {
		return errBadRequest("key %q begins with a NUL byte, which is reserved for Roost's own keys", key)
	}
	if pos, tok := wildcardToken(key); pos > 0 {
		return errBadRequest("key %q: token %d is %q, a NATS wildcard; a key may not have \"*\" or \">\" as a whole dot-separated token", key, pos, tok)
	}
	return nil
}

func (n *Node) get(key string) (_ store.Entry, err error) {
	defer n.metrics.done(opGet, time.Now(), &err)
	return n.read(key)
}

// read is get without its metrics: a batch of gets records them once
// (readBatch).
func (n *Node) read(key string) (store.Entry, error) {
	if err := n.checkKey(key); err != nil {
		return store.Entry{}, err
	}
	return n.find(key)
}

// lookup is get of a key checkKey has passed (the text API checks it
// once, api_text_fast.go).
func (n *Node) lookup(key string) (_ store.Entry, err error) {
	defer n.metrics.done(opGet, time.Now(), &err)
	return n.find(key)
}

// find is lookup without its metrics.
func (n *Node) find(key string) (store.Entry, error) {
	e, err := n.stored(key, nil)
	e, err = n.afterRead(key, e, err) // hot keys; a loader on a miss (load.go)
	return e, explain(err, key, false, 0)
}

// stored is the store's answer for key, once no ack=all write of it waits
// for its replicas: with the value appended to buf, or with buf nil a copy
// of its own (store.GetAppend, store.Get).
func (n *Node) stored(key string, buf []byte) (store.Entry, error) {
	if n.repl != nil && n.repl.Unacked() {
		// A read waits while an ack=all write of the key waits for its
		// replicas: it never sees a value that could vanish with this node.
		if err := n.repl.ReadBarrier(partition.Of(key, n.cfg.Partitions), key, n.ackTimeout()); err != nil {
			return store.Entry{}, &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("key %q: a write of it waits for its replicas; retry shortly", key)}
		}
	}
	if buf != nil {
		return n.store.GetAppend(key, buf)
	}
	return n.store.Get(key)
}

// writeOp validates one set or delete of a batch and turns it into the
// replicator's op; its error is the op's result.
func (n *Node) writeOp(op *wire.Request, ack string) (replicator.Op, error) {
	if err := n.checkKey(op.Key); err != nil {
		return replicator.Op{}, err
	}
	if _, err := parseAck(ack); err != nil {
		return replicator.Op{}, err
	}
	return n.checkedWriteOp(op, nil)
}

// checkedWriteOp is writeOp for an op whose key and ack mode are checked
// already (the text API checks them before it picks where to serve). A set's
// request goes in sr when not nil (the text API's reused memory), in a new
// one otherwise.
func (n *Node) checkedWriteOp(op *wire.Request, sr *store.SetRequest) (replicator.Op, error) {
	if op.Op == wire.OpSet || op.Op == wire.OpDel || op.Op == wire.OpIncr {
		n.forgetLoad(op.Key) // its loader's 404 or refresh schedule no longer holds (load.go)
	}
	switch op.Op {
	case wire.OpSet:
		switch {
		case op.TTL < 0:
			return replicator.Op{}, errBadRequest("negative TTL %d ms", op.TTL)
		case op.TTL > MaxTTL.Milliseconds():
			return replicator.Op{}, errBadRequest("TTL %d ms is over the limit of %d", op.TTL, MaxTTL.Milliseconds())
		case int64(len(op.Value)) > n.cfg.MaxValue:
			return replicator.Op{}, errTooLarge("value of %d bytes is over the limit of %d", len(op.Value), n.cfg.MaxValue)
		}
		if sr == nil {
			sr = new(store.SetRequest)
		}
		*sr = store.SetRequest{Key: op.Key, Value: op.Value, Flags: op.Flags, TTL: time.Duration(op.TTL) * time.Millisecond}
		if sr.Value == nil {
			sr.Value = []byte{}
		}
		if op.CAS != nil {
			sr.CAS, sr.CheckCAS = *op.CAS, true
		}
		return replicator.Op{Set: sr}, nil
	case wire.OpDel:
		dr := &store.DeleteRequest{Key: op.Key}
		if op.CAS != nil {
			dr.CAS, dr.CheckCAS = *op.CAS, true
		}
		return replicator.Op{Del: dr}, nil
	case wire.OpIncr, wire.OpTouch, wire.OpGet:
		return counterOp(op) // ops_incr.go; a get here carries a touch
	}
	return replicator.Op{}, errBadRequest("unknown operation %d: want 1 (get), 2 (set), 3 (del), 4 (incr) or 5 (touch)", op.Op)
}

// writeResult is the API's result of a write op the replicator ran.
func writeResult(op replicator.Op, res replicator.OpResult) wire.Result {
	switch {
	case op.Incr != nil || op.Touch != nil:
		return counterResult(op, res) // ops_incr.go
	case res.Err == nil:
	case op.Set != nil:
		return errResult(explain(res.Err, op.Set.Key, op.Set.CheckCAS, op.Set.CAS))
	default:
		return errResult(explain(res.Err, op.Del.Key, op.Del.CheckCAS, op.Del.CAS))
	}
	return wire.Result{Code: wire.CodeOK, Version: res.Entry.Version}
}

// answerWrite is the API's answer to request op, run as the replicator's
// wop: writeResult, but a touch answers no value (a get that touches does).
func answerWrite(op *wire.Request, wop replicator.Op, res replicator.OpResult) wire.Result {
	r := writeResult(wop, res)
	if op.Op == wire.OpTouch {
		r.Value, r.Flags = nil, 0
	}
	return r
}

// writeLocal runs write ops on this node's store when it has no
// replicator (a node without a cluster view yet).
func (n *Node) writeLocal(op replicator.Op) replicator.OpResult {
	if op.Incr != nil || op.Touch != nil {
		return n.counterLocal(op) // ops_incr.go
	}
	if op.Set != nil {
		e, err := n.store.Set(*op.Set)
		return replicator.OpResult{Entry: e, Err: err}
	}
	v, _, err := n.store.Remove(*op.Del)
	return replicator.OpResult{Entry: store.Entry{Key: op.Del.Key, Version: v}, Err: err}
}

// explain turns a store error into the message a user of the API reads,
// keeping its status code.
func explain(err error, key string, checkCAS bool, cas uint64) error {
	if _, ok := err.(*apiError); ok {
		return err // already in the API's words (replication.go)
	}
	code := storeCode(err)
	switch {
	case err == nil:
		return nil
	case code == wire.CodeNotFound:
		return &apiError{code: code, msg: fmt.Sprintf("key %q not found", key)}
	case code == wire.CodeConflict && checkCAS && cas == 0:
		return &apiError{code: code, msg: fmt.Sprintf("key %q exists (CAS 0 means only if absent)", key)}
	case code == wire.CodeConflict:
		return &apiError{code: code, msg: fmt.Sprintf("key %q is not at version %d (CAS mismatch)", key, cas)}
	case code == wire.CodeTooLarge:
		return &apiError{code: code, msg: fmt.Sprintf("key %q: entry is larger than a store shard's share of --max-memory", key)}
	}
	return &apiError{code: code, msg: err.Error()}
}

// storeCode maps an error of the store to an API status code.
func storeCode(err error) int {
	switch {
	case err == nil:
		return wire.CodeOK
	case errors.Is(err, store.ErrNotFound):
		return wire.CodeNotFound
	case errors.Is(err, store.ErrCASMismatch):
		return wire.CodeConflict
	case errors.Is(err, store.ErrTooLarge):
		return wire.CodeTooLarge
	case errors.Is(err, store.ErrInvalid):
		return wire.CodeBadRequest
	case errors.Is(err, store.ErrStopped):
		return wire.CodeUnavailable
	}
	return wire.CodeInternal
}
