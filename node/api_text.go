package node

import (
	"strconv"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/bus/wire"
)

// The NATS text API: roost.get|set|del.<key>, options in Roost-* headers,
// errors as NATS micro error headers with an empty body (docs/PROTOCOL.md).
// Each request becomes one wire.Request, executed here or at its partition's
// primary.

func (n *Node) handleGet(req micro.Request) {
	key, _ := n.subj.TextKey("get", req.Subject())
	op := wire.Request{Op: wire.OpGet, Key: key}
	ack, answered := touchingGet(req, &op) // Roost-Touch: a read-and-touch (ops_incr.go)
	if answered {
		return
	}
	n.serveText(req, op, ack)
}

func (n *Node) handleSet(req micro.Request) {
	key, _ := n.subj.TextKey("set", req.Subject())
	h := req.Headers()
	op := wire.Request{Op: wire.OpSet, Key: key, Value: clone(req.Data())}
	ttl, err := parseTTL(h.Get(hdrTTL))
	if err != nil {
		respondError(req, err)
		return
	}
	op.TTL = ttlMillis(ttl)
	if v := h.Get(hdrFlags); v != "" {
		if op.Flags, err = parseUint(hdrFlags, v); err != nil {
			respondError(req, err)
			return
		}
	}
	if op.CAS, err = parseCAS(h.Get(hdrCAS)); err != nil {
		respondError(req, err)
		return
	}
	n.serveText(req, op, h.Get(hdrAck))
}

func (n *Node) handleDel(req micro.Request) {
	key, _ := n.subj.TextKey("del", req.Subject())
	h := req.Headers()
	op := wire.Request{Op: wire.OpDel, Key: key}
	var err error
	if op.CAS, err = parseCAS(h.Get(hdrCAS)); err != nil {
		respondError(req, err)
		return
	}
	n.serveText(req, op, h.Get(hdrAck))
}

// serveText executes op and answers in the text API's shape: here when this
// node leads op's partition, from a goroutine of its own when the operation
// must be forwarded or waits for the replicas (ack=all), so the subscription
// keeps serving meanwhile.
func (n *Node) serveText(req micro.Request, op wire.Request, ack string) {
	mode, err := parseAck(ack)
	if err != nil {
		respondError(req, err)
		return
	}
	if err := n.checkKey(op.Key); err != nil {
		respondError(req, err)
		return
	}
	p, local := n.locate(op.Key)
	switch {
	case !local:
		n.serveTextAsync(req, op, func(op *wire.Request) wire.Result { return n.forwardOne(p, *op, ack) })
	case op.Op == wire.OpGet && op.TTL == 0:
		// The common read (the key is checked already, above): here,
		// unless it misses and may wait for a loader (load.go).
		if !n.serveTextGet(req, &op) {
			n.serveTextAsync(req, op, func(op *wire.Request) wire.Result { return n.lookupResult(op.Key) })
		}
	case mode == wire.AckAll:
		// A write (a get here touches: it has a TTL) that waits for the
		// replicas: not on the subscription's goroutine.
		n.serveTextAsync(req, op, func(op *wire.Request) wire.Result { return n.applyText(op, p, ack) })
	default:
		n.respondText(req, &op, n.applyText(&op, p, ack))
	}
}

// serveTextAsync answers req with run(op) from a goroutine of its own. It
// takes op by value apart from serveText so that only these requests put
// their operation on the heap: the common ones, served in place, do not.
func (n *Node) serveTextAsync(req micro.Request, op wire.Request, run func(*wire.Request) wire.Result) {
	d := n.detach(req)
	n.async.Go(func() { n.respondText(d, &op, run(&op)) })
}

// respondError answers with the NATS micro error headers and an empty body.
func respondError(req micro.Request, err error) {
	_ = req.Error(strconv.Itoa(codeOf(err)), err.Error(), nil)
}

// parseCAS reads a Roost-CAS header: absent = unconditional.
func parseCAS(v string) (*uint64, error) {
	if v == "" {
		return nil, nil
	}
	cas, err := parseUint(hdrCAS, v)
	if err != nil {
		return nil, err
	}
	return &cas, nil
}

// ttlMillis converts a TTL to the binary API's milliseconds, rounding a
// positive TTL under a millisecond up so that it still expires.
func ttlMillis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// clone copies a request payload so that the store holds exactly the value's
// bytes and nothing of the message buffer around it. Empty stays non-nil.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}
