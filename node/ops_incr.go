package node

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
)

// Counters and sliding TTLs on every door (docs/PROTOCOL.md, docs/http.md):
// roost.incr.<key> and roost.touch.<key>, a get with Roost-Touch, the
// binary API's OpIncr and OpTouch (and OpGet with a TTL), and
// /v1/roost/incr|touch/<key> over HTTP. Each is a write that the key's
// primary's replicator core computes from the key's entry
// (actors/replicator/incr.go), so increments are linearizable per key with
// ack=all.

// counterOp validates an incr, a touch or a read-and-touch (a get with a
// TTL) and turns it into the replicator's op.
func counterOp(op *wire.Request) (replicator.Op, error) {
	switch {
	case op.TTL < 0:
		return replicator.Op{}, errBadRequest("negative TTL %d ms", op.TTL)
	case op.TTL > MaxTTL.Milliseconds():
		return replicator.Op{}, errBadRequest("TTL %d ms is over the limit of %d", op.TTL, MaxTTL.Milliseconds())
	}
	ttl := time.Duration(op.TTL) * time.Millisecond
	switch op.Op {
	case wire.OpIncr:
		delta, err := parseDelta(op.Value)
		if err != nil {
			return replicator.Op{}, err
		}
		return replicator.Op{Incr: &replicator.IncrRequest{Key: op.Key, Delta: delta, TTL: ttl}}, nil
	case wire.OpTouch:
		if ttl == 0 {
			return replicator.Op{}, errBadRequest("touch needs a TTL above 0 (Roost-TTL, or ttl in the binary API): the new expiry, from now")
		}
	case wire.OpGet:
		if ttl == 0 {
			return replicator.Op{}, errBadRequest("a get that touches needs a TTL above 0")
		}
	}
	return replicator.Op{Touch: &replicator.TouchRequest{Key: op.Key, TTL: ttl}}, nil
}

// parseDelta reads an incr's delta: a signed decimal integer, empty = 1.
func parseDelta(v []byte) (int64, error) {
	s := strings.TrimSpace(string(v))
	if s == "" {
		return 1, nil
	}
	d, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errBadRequest("bad delta %q: want a signed decimal integer within ±9223372036854775807, or nothing for 1", clipString(s))
	}
	return d, nil
}

func clipString(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// counterResult is the API's result of an incr or a touch: an incr answers
// the new count as decimal text, a touch the entry (its value too, for a
// read-and-touch; runPartition drops it for a plain touch).
func counterResult(op replicator.Op, res replicator.OpResult) wire.Result {
	key := ""
	if op.Incr != nil {
		key = op.Incr.Key
	} else {
		key = op.Touch.Key
	}
	if res.Err != nil {
		return errResult(explainCounter(res.Err, key))
	}
	e := &res.Entry
	r := wire.Result{Code: wire.CodeOK, Value: e.Value, Version: e.Version, Expires: unixMilli(e.Expires)}
	if op.Touch != nil {
		r.Flags = e.Flags
	}
	return r
}

// explainCounter puts an incr's or a touch's error in the API's words.
func explainCounter(err error, key string) error {
	switch {
	case errors.Is(err, replicator.ErrNotNumber):
		return &apiError{code: wire.CodeConflict, msg: fmt.Sprintf("key %q does not hold a counter: %v; incr adds only to a signed decimal integer", key, errors.Unwrap(err))}
	case errors.Is(err, replicator.ErrOverflow):
		return &apiError{code: wire.CodeConflict, msg: fmt.Sprintf("key %q: %v; the counter is unchanged", key, err)}
	}
	return explain(err, key, false, 0)
}

// counterLocal runs an incr or a touch on this node's store when it has no
// replicator.
func (n *Node) counterLocal(op replicator.Op) replicator.OpResult {
	var e store.Entry
	var err error
	if op.Incr != nil {
		e, err = replicator.Incr(n.store, *op.Incr)
	} else {
		e, err = replicator.Touch(n.store, *op.Touch)
	}
	return replicator.OpResult{Entry: e, Err: err}
}

// ---- the text API ----

func (n *Node) handleIncr(req micro.Request) {
	key, _ := n.subj.TextKey("incr", req.Subject())
	h := req.Headers()
	ttl, err := parseTTL(h.Get(hdrTTL))
	if err != nil {
		respondError(req, err)
		return
	}
	if _, err := parseDelta(req.Data()); err != nil {
		respondError(req, err)
		return
	}
	n.serveText(req, wire.Request{Op: wire.OpIncr, Key: key, Value: clone(req.Data()), TTL: ttlMillis(ttl)}, h.Get(hdrAck))
}

func (n *Node) handleTouch(req micro.Request) {
	key, _ := n.subj.TextKey("touch", req.Subject())
	h := req.Headers()
	ttl, err := parseTTL(h.Get(hdrTTL))
	if err != nil {
		respondError(req, err)
		return
	}
	if ttl <= 0 {
		respondError(req, errBadRequest("touch needs a %s header above 0: the new expiry, from now", hdrTTL))
		return
	}
	n.serveText(req, wire.Request{Op: wire.OpTouch, Key: key, TTL: ttlMillis(ttl)}, h.Get(hdrAck))
}

// touchingGet turns a get with a Roost-Touch header into a read-and-touch;
// ok=false when the header is absent (a plain get) or bad (answered).
func touchingGet(req micro.Request, op *wire.Request) (ack string, answered bool) {
	h := req.Headers()
	v := h.Get(hdrTouch)
	if v == "" {
		return "", false
	}
	ttl, err := parseTTL(v)
	if err == nil && ttl <= 0 {
		err = errBadRequest("bad %s %q: want a TTL above 0, the new expiry from now", hdrTouch, v)
	}
	if err != nil {
		respondError(req, err)
		return "", true
	}
	op.TTL = ttlMillis(ttl)
	return h.Get(hdrAck), false
}

// ---- HTTP: /v1/roost/incr/<key> and /v1/roost/touch/<key> ----

// counterRoutes registers the HTTP routes of counters and touches; each
// needs the token.
func (n *Node) counterRoutes(mux *http.ServeMux) {
	mux.Handle("PUT /v1/roost/incr/{key...}", n.requireToken(http.HandlerFunc(n.httpIncr)))
	mux.Handle("POST /v1/roost/incr/{key...}", n.requireToken(http.HandlerFunc(n.httpIncr)))
	mux.Handle("PUT /v1/roost/touch/{key...}", n.requireToken(http.HandlerFunc(n.httpTouch)))
	mux.Handle("POST /v1/roost/touch/{key...}", n.requireToken(http.HandlerFunc(n.httpTouch)))
}

// maxDeltaBytes bounds an incr's body: a delta is at most 20 digits and a sign.
const maxDeltaBytes = 64

func (n *Node) httpIncr(w http.ResponseWriter, r *http.Request) {
	op := wire.Request{Op: wire.OpIncr, Key: r.PathValue("key")}
	params := r.URL.Query()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDeltaBytes))
	if err != nil {
		httpError(w, errBadRequest("the body is the delta, a signed decimal integer of at most %d bytes: %v", maxDeltaBytes, err))
		return
	}
	op.Value = body
	if d := params.Get("delta"); d != "" && len(body) == 0 {
		op.Value = []byte(d)
	}
	if _, err := parseDelta(op.Value); err != nil {
		httpError(w, err)
		return
	}
	n.httpCounter(w, r, op)
}

func (n *Node) httpTouch(w http.ResponseWriter, r *http.Request) {
	n.httpCounter(w, r, wire.Request{Op: wire.OpTouch, Key: r.PathValue("key")})
}

// httpCounter answers an incr or a touch: the new count as text (incr) or
// nothing (touch), with the version in X-Roost-Version and X-Consul-Index.
func (n *Node) httpCounter(w http.ResponseWriter, r *http.Request, op wire.Request) {
	params := r.URL.Query()
	if err := n.checkKey(op.Key); err != nil {
		httpError(w, err)
		return
	}
	ttl, err := parseTTL(params.Get("ttl"))
	if err != nil {
		httpError(w, err)
		return
	}
	if op.Op == wire.OpTouch && ttl <= 0 {
		httpError(w, errBadRequest("touch needs ?ttl= above 0: the new expiry, from now"))
		return
	}
	op.TTL = ttlMillis(ttl)
	ack, err := parseAck(params.Get("ack"))
	if err != nil {
		httpError(w, err)
		return
	}
	res := n.executeBatch([]wire.Request{op}, ack)[0]
	if res.Code != wire.CodeOK {
		http.Error(w, res.Error, int(res.Code))
		return
	}
	h := w.Header()
	h.Set("X-Roost-Version", strconv.FormatUint(res.Version, 10))
	h.Set("X-Consul-Index", strconv.FormatUint(res.Version, 10))
	if res.Expires != 0 {
		h.Set("X-Roost-Expires", time.UnixMilli(res.Expires).UTC().Format(time.RFC3339Nano))
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if op.Op == wire.OpIncr {
		_, _ = w.Write(append(res.Value, '\n'))
	}
}
