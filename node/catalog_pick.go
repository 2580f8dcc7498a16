package node

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
)

// The pick subject (docs/PROTOCOL.md, "Service catalog"):
// <prefix>.svc.pick.<service> answers one passing instance of the service,
// the first of the balanced order (catalog.go, "Balancing"), as a consul
// ServiceEntry in JSON; a 404 micro error when none passes. An optional
// header Roost-Tag (repeatable) keeps the instances with every such tag.
// Every node serves it (queue group "q"), from its own read of the catalog.

// tagHeader filters the pick subject's instances by tag.
const tagHeader = "Roost-Tag"

// startPick serves the pick subject.
func (n *Node) startPick() error {
	sub, err := n.bus.Conn().QueueSubscribe(n.subj.SvcPickAll(), "q", func(m *nats.Msg) {
		go n.servePick(m) // reads the catalog over the bus: not on the subscription's goroutine
	})
	if err != nil {
		return err
	}
	n.agent.pickSub = sub
	return nil
}

// stopPick stops serving the pick subject.
func (n *Node) stopPick() {
	if n.agent.pickSub != nil {
		_ = n.agent.pickSub.Unsubscribe()
	}
}

// servePick answers one pick request.
func (n *Node) servePick(m *nats.Msg) {
	name, ok := n.subj.SvcName(m.Subject)
	if !ok || strings.ContainsAny(name, "*>") {
		respondMsgError(m, errBadRequest("bad pick subject %q: want %s", m.Subject, n.subj.SvcPick("<service>")))
		return
	}
	var tags []string
	if m.Header != nil {
		tags = m.Header.Values(tagHeader)
	}
	ctx, cancel := context.WithTimeout(n.agent.ctx, forwardTimeout)
	defer cancel()
	all, _, err := n.readCatalog(ctx, blocking{})
	if err != nil {
		respondMsgError(m, err)
		return
	}
	es := healthEntries(all, healthFilter{name: name, tags: tags, passing: true})
	if len(es) == 0 {
		respondMsgError(m, &apiError{code: wire.CodeNotFound, msg: "no passing instance of service " + name})
		return
	}
	balance(es, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	data, err := json.Marshal(es[0])
	if err != nil {
		respondMsgError(m, err)
		return
	}
	_ = m.Respond(data)
}
