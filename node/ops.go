package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
)

// The operations every API (NATS text, NATS binary, HTTP) goes through, so
// that limits and error codes are the same whichever door a request used.

func (n *Node) checkKey(key string) error {
	if key == "" {
		return errBadRequest("empty key")
	}
	if len(key) > n.cfg.MaxKey {
		return errBadRequest("key of %d bytes is over the limit of %d", len(key), n.cfg.MaxKey)
	}
	return nil
}

func (n *Node) get(key string) (_ store.Entry, err error) {
	defer n.metrics.done(opGet, time.Now(), &err)
	if err := n.checkKey(key); err != nil {
		return store.Entry{}, err
	}
	e, err := n.store.Get(key)
	return e, explain(err, key, false, 0)
}

// set writes one key through the replicator: with ack "all" it returns once
// every live owner of the key's partition applied it. With emit, the write
// runs inside a replicator Write of its partition (a batch, see
// executeBatch) and emit logs it.
func (n *Node) set(req store.SetRequest, ack string, emit func(store.Record)) (_ store.Entry, err error) {
	defer n.metrics.done(opSet, time.Now(), &err)
	if err := n.checkKey(req.Key); err != nil {
		return store.Entry{}, err
	}
	if int64(len(req.Value)) > n.cfg.MaxValue {
		return store.Entry{}, errTooLarge("value of %d bytes is over the limit of %d", len(req.Value), n.cfg.MaxValue)
	}
	if req.TTL < 0 {
		return store.Entry{}, errBadRequest("negative TTL %s", req.TTL)
	}
	if _, err := parseAck(ack); err != nil {
		return store.Entry{}, err
	}
	var e store.Entry
	write := func(emit func(store.Record)) error {
		var err error
		if e, err = n.store.Set(req); err == nil {
			emit(recordOf(e))
		}
		return err
	}
	if emit != nil {
		err = write(emit)
	} else {
		err = n.replicate(req.Key, ack, write)
	}
	return e, explain(err, req.Key, req.CheckCAS, req.CAS)
}

func (n *Node) del(req store.DeleteRequest, ack string, emit func(store.Record)) (_ uint64, err error) {
	defer n.metrics.done(opDel, time.Now(), &err)
	if err := n.checkKey(req.Key); err != nil {
		return 0, err
	}
	if _, err := parseAck(ack); err != nil {
		return 0, err
	}
	var v uint64
	write := func(emit func(store.Record)) error {
		var deleted bool
		var err error
		if v, deleted, err = n.store.Remove(req); deleted {
			emit(store.Record{Key: req.Key, Version: v, Deleted: true})
		}
		return err
	}
	if emit != nil {
		err = write(emit)
	} else {
		err = n.replicate(req.Key, ack, write)
	}
	return v, explain(err, req.Key, req.CheckCAS, req.CAS)
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
