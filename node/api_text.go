package node

import (
	"strconv"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/actors/store"
)

// The NATS text API: roost.get|set|del.<key>, options in Roost-* headers,
// errors as NATS micro error headers with an empty body (docs/PROTOCOL.md).

func (n *Node) handleGet(req micro.Request) {
	key, _ := n.subj.TextKey("get", req.Subject())
	e, err := n.get(key)
	if err != nil {
		respondError(req, err)
		return
	}
	h := micro.Headers{
		hdrVersion: {strconv.FormatUint(e.Version, 10)},
		hdrFlags:   {strconv.FormatUint(e.Flags, 10)},
	}
	if e.Expires != 0 {
		h[hdrExpires] = []string{time.Unix(0, e.Expires).UTC().Format(time.RFC3339Nano)}
	}
	_ = req.Respond(e.Value, micro.WithHeaders(h))
}

func (n *Node) handleSet(req micro.Request) {
	key, _ := n.subj.TextKey("set", req.Subject())
	h := req.Headers()
	sr := store.SetRequest{Key: key, Value: clone(req.Data())}
	var err error
	if sr.TTL, err = parseTTL(h.Get(hdrTTL)); err != nil {
		respondError(req, err)
		return
	}
	if v := h.Get(hdrFlags); v != "" {
		if sr.Flags, err = parseUint(hdrFlags, v); err != nil {
			respondError(req, err)
			return
		}
	}
	if v := h.Get(hdrCAS); v != "" {
		if sr.CAS, err = parseUint(hdrCAS, v); err != nil {
			respondError(req, err)
			return
		}
		sr.CheckCAS = true
	}
	e, err := n.set(sr, h.Get(hdrAck))
	if err != nil {
		respondError(req, err)
		return
	}
	_ = req.Respond(nil, micro.WithHeaders(micro.Headers{hdrVersion: {strconv.FormatUint(e.Version, 10)}}))
}

func (n *Node) handleDel(req micro.Request) {
	key, _ := n.subj.TextKey("del", req.Subject())
	h := req.Headers()
	dr := store.DeleteRequest{Key: key}
	if v := h.Get(hdrCAS); v != "" {
		var err error
		if dr.CAS, err = parseUint(hdrCAS, v); err != nil {
			respondError(req, err)
			return
		}
		dr.CheckCAS = true
	}
	version, err := n.del(dr, h.Get(hdrAck))
	if err != nil {
		respondError(req, err)
		return
	}
	_ = req.Respond(nil, micro.WithHeaders(micro.Headers{hdrVersion: {strconv.FormatUint(version, 10)}}))
}

// respondError answers with the NATS micro error headers and an empty body.
func respondError(req micro.Request, err error) {
	_ = req.Error(strconv.Itoa(codeOf(err)), err.Error(), nil)
}

// clone copies a request payload so that the store holds exactly the value's
// bytes and nothing of the message buffer around it. Empty stays non-nil.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}
