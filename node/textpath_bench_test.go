package node

import (
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/bus/wire"
)

// BenchmarkTextPath measures, with no requester, the parts of a text-API
// get and set that are Roost's own (issue 15), each beside what it
// replaced, in one run:
//
//	go test -run '^$' -bench TextPath -benchmem -count 5 ./node/
//
// reply: a get's success reply (Roost-Version, Roost-Flags, a 100-byte
// value) published to a subject nobody listens to, through micro's Respond
// as before (microReply) and from the reused message (respondText). set:
// one set through apply (a batch of one: executeGroups' group and copies) and
// through applyText (writeOne). get: one get through apply (getResult: the
// key checked again) and through lookupResult.
func BenchmarkTextPath(b *testing.B) {
	const keys = 1024
	n, names := benchNode(b, keys)
	value := make([]byte, 100)
	req := &detached{nc: n.bus.Conn(), subject: "roost.get.key1", reply: "bench.nobody"}
	get := wire.Request{Op: wire.OpGet, Key: "key1"}
	res := wire.Result{Code: wire.CodeOK, Value: value, Version: 123456789, Flags: 0}
	b.Run("reply/micro", func(b *testing.B) {
		for b.Loop() {
			microReply(req, &get, res)
		}
	})
	b.Run("reply/reused", func(b *testing.B) {
		for b.Loop() {
			n.respondText(req, &get, res)
		}
	})
	for _, path := range []struct {
		name string
		op   wire.Op
		run  func(*wire.Request, string) wire.Result
	}{
		{"set/apply", wire.OpSet, n.apply},
		{"set/applyText", wire.OpSet, func(op *wire.Request, ack string) wire.Result {
			p, _ := n.locate(op.Key)
			return n.applyText(op, p, ack)
		}},
		{"get/apply", wire.OpGet, n.apply},
	} {
		b.Run(path.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				op := wire.Request{Op: path.op, Key: names[i%keys]}
				if path.op == wire.OpSet {
					op.Value = value
				}
				if r := path.run(&op, ""); r.Code != wire.CodeOK {
					b.Fatalf("%s: %+v", path.name, r)
				}
				i++
			}
		})
	}
	b.Run("get/lookupResult", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if r := n.lookupResult(names[i%keys]); r.Code != wire.CodeOK {
				b.Fatalf("get: %+v", r)
			}
			i++
		}
	})
}

// microReply is the text API's success reply as it was built before issue
// 15: a header map per reply, handed to micro's Respond.
func microReply(req micro.Request, op *wire.Request, r wire.Result) {
	h := micro.Headers{hdrVersion: {strconv.FormatUint(r.Version, 10)}}
	if op.Op == wire.OpGet {
		h[hdrFlags] = []string{strconv.FormatUint(r.Flags, 10)}
	}
	if r.Expires != 0 && (op.Op == wire.OpGet || op.Op == wire.OpTouch) {
		h[hdrExpires] = []string{time.UnixMilli(r.Expires).UTC().Format(time.RFC3339Nano)}
	}
	_ = req.Respond(r.Value, micro.WithHeaders(h))
}

// BenchmarkTextHandler measures the text API's get and set handlers alone,
// as micro calls them, each answering a reply subject nobody listens to:
// Roost's whole share of a request on the node's subscription goroutine,
// without NATS's delivery around it.
//
//	go test -run '^$' -bench TextHandler -benchmem -count 5 ./node/
func BenchmarkTextHandler(b *testing.B) {
	const keys = 1024
	n, names := benchNode(b, keys)
	value := make([]byte, 100)
	reqs := func(op string, data []byte) []*detached {
		r := make([]*detached, keys)
		for i := range r {
			r[i] = &detached{nc: n.bus.Conn(), subject: n.subj.Text(op, names[i]), reply: "bench.nobody", data: data}
		}
		return r
	}
	gets, sets := reqs("get", nil), reqs("set", value)
	b.Run("get", func(b *testing.B) {
		i := 0
		for b.Loop() {
			n.handleGet(gets[i%keys])
			i++
		}
	})
	b.Run("set", func(b *testing.B) {
		i := 0
		for b.Loop() {
			n.handleSet(sets[i%keys])
			i++
		}
	})
}
