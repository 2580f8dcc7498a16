package node

import (
	"encoding/json"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// detached is a micro.Request answered from another goroutine than the
// endpoint's handler. micro's own request records the outcome for its stats
// after the handler returns, so it must not be answered later; a detached
// copy publishes the answer to the reply subject itself. Forwarded requests
// use it; micro counts them when the handler hands them off.
type detached struct {
	nc      *nats.Conn
	subject string
	reply   string
	data    []byte
	headers micro.Headers
}

// detach copies what the answer needs from req, which must not be used after.
func (n *Node) detach(req micro.Request) micro.Request {
	return &detached{nc: n.bus.Conn(), subject: req.Subject(), reply: req.Reply(), data: req.Data(), headers: req.Headers()}
}

func (d *detached) Respond(data []byte, opts ...micro.RespondOpt) error {
	msg := &nats.Msg{Subject: d.reply, Data: data}
	for _, opt := range opts {
		opt(msg)
	}
	return d.nc.PublishMsg(msg)
}

func (d *detached) RespondJSON(v any, opts ...micro.RespondOpt) error {
	data, err := json.Marshal(v)
	if err != nil {
		return micro.ErrMarshalResponse
	}
	return d.Respond(data, opts...)
}

func (d *detached) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	msg := &nats.Msg{Subject: d.reply, Data: data, Header: nats.Header{
		micro.ErrorHeader:     {description},
		micro.ErrorCodeHeader: {code},
	}}
	for _, opt := range opts {
		opt(msg)
	}
	return d.nc.PublishMsg(msg)
}

func (d *detached) Data() []byte           { return d.data }
func (d *detached) Headers() micro.Headers { return d.headers }
func (d *detached) Subject() string        { return d.subject }
func (d *detached) Reply() string          { return d.reply }
