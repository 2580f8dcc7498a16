package node

import (
	"errors"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
)

// The text API's replies and its common read, kept cheap: they are most of
// what Roost itself costs a get or set on top of NATS (issue 15,
// BENCHMARKS.md "Single-node text path").
//
// A successful reply is published straight to the request's reply subject
// from a reused message, its header map and value slices included: nats.go
// copies a message into its write buffer before PublishMsg returns, so the
// message is free again at once. micro's Respond would allocate a message,
// a header map and an option closure per reply, and adds nothing to the
// endpoint's stats that a success needs (micro counts the request when the
// handler returns, and an error only through Error, which errors still use:
// the micro error headers and the endpoint's error count stay as they were).

// textReply is a reusable success reply of the text API. Its two header
// maps are the replies' two shapes, filled in place: a get's (Roost-Version
// and Roost-Flags) and a write's (Roost-Version); Roost-Expires comes and
// goes for the replies that carry it. The numbers are written into the
// reply's own digit buffers and the header values are strings over them:
// nats.go copies the header into its write buffer before PublishMsg
// returns, and the reply is not used again before it goes back to the pool.
type textReply struct {
	msg     nats.Msg
	get     nats.Header
	write   nats.Header
	version [1]string // backing of the Roost-Version value
	flags   [1]string // of Roost-Flags
	expires [1]string // of Roost-Expires
	vdigits [20]byte  // the version's decimal digits (a uint64 has at most 20)
	fdigits [20]byte  // the flags'
	value   []byte    // a get's value, copied here from the store (serveTextGet)
}

// maxReplyBuffer bounds the value buffer a pooled reply keeps: a larger
// value is read into a buffer of its own, which goes with its reply.
const maxReplyBuffer = 64 << 10

var textReplies = sync.Pool{New: func() any {
	r := &textReply{value: make([]byte, 0, 512)}
	r.get = nats.Header{hdrVersion: r.version[:], hdrFlags: r.flags[:]}
	r.write = nats.Header{hdrVersion: r.version[:]}
	return r
}}

// respondText writes a Result as a text-API reply: the value as body, and
// Roost-Version, with Roost-Flags on a get and Roost-Expires on a get or
// touch of a key with a TTL (docs/PROTOCOL.md); an error as the micro error
// headers with an empty body.
func (n *Node) respondText(req micro.Request, op *wire.Request, r wire.Result) {
	n.reply(textReplies.Get().(*textReply), req, op, r)
}

// reply is respondText from t, which it puts back in the pool.
func (n *Node) reply(t *textReply, req micro.Request, op *wire.Request, r wire.Result) {
	defer textReplies.Put(t)
	if r.Code != wire.CodeOK {
		_ = req.Error(strconv.Itoa(int(r.Code)), r.Error, nil)
		return
	}
	reply := req.Reply()
	if reply == "" {
		return // a publish, not a request: nobody to answer (as nats.Msg.Respond)
	}
	t.version[0] = digits(t.vdigits[:0], r.Version)
	h := t.write
	if op.Op == wire.OpGet {
		t.flags[0] = digits(t.fdigits[:0], r.Flags)
		h = t.get
	}
	expires := r.Expires != 0 && (op.Op == wire.OpGet || op.Op == wire.OpTouch)
	if expires {
		t.expires[0] = time.UnixMilli(r.Expires).UTC().Format(time.RFC3339Nano)
		h[hdrExpires] = t.expires[:]
	}
	t.msg.Subject, t.msg.Header, t.msg.Data = reply, h, r.Value
	_ = n.bus.Conn().PublishMsg(&t.msg)
	if expires {
		delete(h, hdrExpires)
	}
	t.msg.Data = nil // hold no value in the pool (but t.value's buffer)
}

// serveTextGet answers a get of a key checkKey has passed, here, with the
// value read into the reply's own buffer, and reports true; or, when the
// key misses and may wait for a loader (lookupHere), does nothing and
// reports false.
func (n *Node) serveTextGet(req micro.Request, op *wire.Request) bool {
	t := textReplies.Get().(*textReply)
	r, here := n.lookupHere(op.Key, t.value[:0])
	if !here {
		textReplies.Put(t)
		return false
	}
	if cap(r.Value) > cap(t.value) && cap(r.Value) <= maxReplyBuffer {
		t.value = r.Value[:0] // the store grew it: keep the larger buffer
	}
	n.reply(t, req, op, r)
	return true
}

// digits writes v in decimal into buf, which has room for it, and returns
// the digits as a string over buf: valid until buf is written again.
func digits(buf []byte, v uint64) string {
	buf = strconv.AppendUint(buf, v, 10)
	return unsafe.String(unsafe.SliceData(buf), len(buf))
}

// lookupResult reads one key that checkKey has passed: getResult without
// the key's checks, which the text API ran before it chose where to serve
// the key.
func (n *Node) lookupResult(key string) wire.Result {
	e, err := n.lookup(key)
	if err != nil {
		return errResult(err)
	}
	return entryResult(e)
}

// lookupHere is lookupResult for the text API's subscription goroutine,
// which must not wait for a loader, with the value appended to buf (not
// nil) instead of a copy of its own: when key misses and a loader may
// answer for it (mayLoad, load.go), here is false and nothing has happened
// that counts (metrics, hot keys): the caller runs lookupResult from a
// goroutine of its own. So a hit, the common read, asks the server nothing
// about loaders; only a miss does, as the read-through needs it to.
func (n *Node) lookupHere(key string, buf []byte) (r wire.Result, here bool) {
	start := time.Now()
	e, err := n.stored(key, buf)
	if errors.Is(err, store.ErrNotFound) && n.mayLoad(key) {
		return wire.Result{}, false
	}
	defer n.metrics.done(opGet, start, &err)
	if e, err = n.afterRead(key, e, err); err != nil {
		err = explain(err, key, false, 0)
		return errResult(err), true
	}
	return entryResult(e), true
}

// entryResult is the API's result of a key read.
func entryResult(e store.Entry) wire.Result {
	return wire.Result{Code: wire.CodeOK, Value: e.Value, Version: e.Version, Flags: e.Flags, Expires: unixMilli(e.Expires)}
}

// applyText runs op, of partition p, which this node leads, for the text
// API: apply without a batch's bookkeeping (executeGroups' group, the
// batch's copies and slices) for its single operation. serveText has
// checked op's key and ack mode.
func (n *Node) applyText(op *wire.Request, p int, ack string) wire.Result {
	if op.Op == wire.OpGet && op.TTL == 0 { // a get with a TTL touches: a write
		return n.getResult(op.Key)
	}
	return n.writeOne(op, p, ack)
}

// writeScratch is the memory of one text-API write on its way through the
// replicator, reused: Submit reads the ops and fills the results before it
// returns, and keeps neither (the log keeps the store's records).
type writeScratch struct {
	wops [1]replicator.Op
	res  [1]replicator.OpResult
	set  store.SetRequest
}

var writeScratches = sync.Pool{New: func() any { return new(writeScratch) }}

// writeOne is runPartition and executeGroups (replication.go) for a batch
// of one write of partition p, checked already: submitted to the
// replicator, waited for when its ack mode says so, counted in the metrics.
func (n *Node) writeOne(op *wire.Request, p int, ack string) (r wire.Result) {
	start := time.Now()
	defer func() { n.metrics.doneResult(opKindOf(op.Op), start, r) }()
	s := writeScratches.Get().(*writeScratch)
	defer func() { *s = writeScratch{}; writeScratches.Put(s) }() // hold no key or value in the pool
	wop, err := n.checkedWriteOp(op, &s.set)
	if err != nil {
		return errResult(err)
	}
	s.wops[0] = wop
	pw, err := n.submit(p, ack, s.wops[:], s.res[:])
	if err != nil {
		return errResult(n.replicationError(p, err))
	}
	r = answerWrite(op, wop, s.res[0])
	if err := pw.Wait(); err != nil && r.Code == wire.CodeOK {
		r = errResult(n.replicationError(p, err))
	}
	return r
}
