package node

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/bus/wire"
)

// Routing of the text API by NATS (docs/PROTOCOL.md, "Routing"). The
// server maps "<prefix>.<op>.<key>" to "<prefix>.t.<partition>.<op>.<key>"
// (wire.Subjects.TextMappings), and the node that serves a partition
// subscribes to "<prefix>.t.<partition>.>" in queue group "t": a request
// reaches its key's primary with no hop. The text API's own subjects stay
// subscribed on every node (local to its server) for what no mapping
// routes: keys of more tokens than wire.MaxRoutedTokens, a server started
// with --text-route local, or an external NATS without the mappings.
//
// Every node of a cluster holds the routed subjects as below, whatever its
// --text-route: the flag decides only whether its own server maps its
// clients' requests, so a cluster that mixes the two answers both.
//
// Which node holds a partition's subscription follows the table, and never
// leaves the subject without a subscriber while a node can serve it:
//   - the primary subscribes once the partition is ready (pulled in);
//   - a node that stops leading a partition keeps its subscription, and
//     forwards what it receives (one hop), until another node subscribes;
//   - when no node holds the subject (its primary was killed: the server
//     drops a dead peer's interest at once, long before the peers mark it
//     dead), the primary still pulling the partition in takes it, and so
//     does the partition's first replica in the table, as a stand-in: it
//     forwards (to the partition subject, which waits for a primary within
//     the forwarding budget) until the new primary holds the subject.
//
// Whatever node a request reaches, serveText decides by the node's own
// table: here, or forwarded. The subscriptions only choose where requests
// land; they never decide an answer.

// textOp is one keyed operation of the text API: "<prefix>.<name>.<key>".
type textOp struct {
	name    string
	handler micro.HandlerFunc
}

// textOps are the text API's keyed operations. A new one is registered
// here, and only here: it gets its endpoint, its mappings and the routing
// to its key's partition.
func (n *Node) textOps() []textOp {
	return []textOp{
		{"get", n.handleGet},
		{"set", n.handleSet},
		{"del", n.handleDel},
		{"incr", n.handleIncr},
		{"touch", n.handleTouch},
	}
}

// Values of Config.TextRoute.
const (
	TextRoutePartition = "partition" // the embedded server maps each text request to its key's partition: NATS routes it to the primary (default, "")
	TextRouteLocal     = "local"     // the embedded server maps nothing: the node a client is connected to answers its text requests, forwarding to the primary
)

// routedQueue is the queue group of the routed subscriptions.
const routedQueue = "t"

// routeTick is how often the node checks its partitions' subscriptions
// against its table and the replicator, besides on each view change.
const routeTick = 10 * time.Millisecond

// routeHandOff bounds how long a stopping node waits for other nodes to
// take the routed subjects it holds before it drops them.
const routeHandOff = 2 * time.Second

// routeGrace is how long a node that stopped leading a partition keeps its
// subscription when it cannot see the others' (an external NATS).
const routeGrace = 3 * time.Second

// textRouting reports whether this node holds its partitions' routed
// subjects: whenever it can have peers, whatever its --text-route, so that
// a request any server of the cluster mapped finds its primary (a cluster
// may mix the two settings: a rolling change of the flag, or an operator's
// choice per node). An embedded server started without a cluster port never
// gets one (bus.ErrNoCluster), so a lone node keeps the text API as it is,
// with no mapping to match.
func (n *Node) textRouting() bool {
	return n.cfg.NATSURL != "" || n.cfg.ClusterListen != "" || len(n.cfg.Join) > 0
}

// holdsRoutes reports whether this node holds the routed subjects of the
// partitions it leads, which its heartbeats tell its peers (mapText).
func (n *Node) holdsRoutes() bool { return n.textRouting() && !n.unrouted }

// mapText has the embedded server map the text API to partitions while
// every server of view v holds the routed subjects, and not while one does
// not: a node of a build before it (its heartbeats say nothing of it) in a
// rolling upgrade. A request mapped to a partition that node leads would
// find nobody to answer it; unmapped, the node the client is connected to
// answers it, forwarding to the primary, as under --text-route local. The
// mappings come back once that node has gone. Without mappings (local, an
// external NATS, a lone node) there is nothing to decide.
func (n *Node) mapText(v membership.View) {
	if len(n.textMappings()) == 0 {
		return
	}
	var without []string
	for _, m := range v.Members {
		if m.Role != membership.RoleProxy && (m.Status == membership.Alive || m.Status == membership.Suspect) && !m.Routes {
			without = append(without, m.Name)
		}
	}
	on := len(without) == 0
	if on == n.bus.Mapped() {
		return
	}
	if err := n.bus.SetMapped(on); err != nil {
		n.log.Error("cannot change the text API's mappings", "err", err)
		return
	}
	if on {
		n.log.Info("text requests are mapped to their partitions again: every server holds the routed subjects")
	} else {
		n.log.Warn("text requests are not mapped to partitions while servers of an older build are members: they do not hold the routed subjects", "servers", without)
	}
}

// textMappings are the mappings the embedded server applies, or none: the
// flag decides only this. With an external NATS the operator adds them to
// the server's configuration ("roost mappings").
func (n *Node) textMappings() []wire.Mapping {
	if !n.textRouting() || n.cfg.NATSURL != "" || n.cfg.TextRoute == TextRouteLocal {
		return nil
	}
	return n.subj.TextMappings(TextOps(), n.cfg.Partitions)
}

// textRouter holds the routed subscriptions of a node; its loop owns them.
type textRouter struct {
	handlers map[string]micro.HandlerFunc // by op name
	subs     map[int]*routedSub           // by partition
	subjects []string                     // by partition: its routed subject (RoutedPartition)
	wake     chan struct{}                // a view changed: look now
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// routedSub is this node's subscription to one partition's routed subject.
type routedSub struct {
	sub       *nats.Subscription
	undesired time.Time // when this node stopped being the one to serve it; zero while it is
}

// routeState is what decides whether a node holds a partition's routed
// subscription (wantRouted).
type routeState struct {
	subscribed bool          // it holds it now
	serves     bool          // it leads the partition, has pulled it in, and is not leaving
	leads      bool          // it leads it in its table (pulled in or not) and is not leaving
	standIn    bool          // it is the partition's first replica in its table, and is not leaving
	others     int           // other nodes' subscriptions to it; -1 = unknown (external NATS)
	undesired  time.Duration // how long it has held it without serving it
}

// wantRouted is the rule above: whether the node should hold the
// subscription now.
func wantRouted(s routeState) bool {
	switch {
	case s.serves:
		return true
	case (s.leads || s.standIn) && s.others == 0:
		return true // nobody serves it: take its requests, forward them or wait for the pull
	case !s.subscribed:
		return false
	case s.others > 0:
		return false // another node took it
	case s.others < 0:
		return s.undesired < routeGrace
	}
	return true // nobody else yet: keep forwarding its requests
}

// startTextRouter subscribes the partitions this node serves and keeps them in
// step with the table until stopTextRouter.
func (n *Node) startTextRouter() {
	if !n.holdsRoutes() {
		return
	}
	rt := &textRouter{
		handlers: map[string]micro.HandlerFunc{},
		subs:     map[int]*routedSub{},
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	for _, op := range n.textOps() {
		rt.handlers[op.name] = op.handler
	}
	for p := range n.cfg.Partitions {
		rt.subjects = append(rt.subjects, n.subj.RoutedPartition(p))
	}
	n.textRoutes.Store(rt)
	n.reconcileRoutes(rt)
	go n.runTextRouter(rt)
}

// runTextRouter reconciles the subscriptions on every view change and tick.
func (n *Node) runTextRouter(rt *textRouter) {
	defer close(rt.done)
	tick := time.NewTicker(routeTick)
	defer tick.Stop()
	stop := rt.stop
	var deadline <-chan time.Time
	for {
		select {
		case <-stop:
			// A stopping node leads nothing (leaving): it lets go of each
			// subject as another node takes it, as on any table change,
			// for up to routeHandOff; then of the rest.
			stop, deadline = nil, time.After(routeHandOff)
			if n.killed {
				deadline = time.After(0)
			}
		case <-deadline:
			for p, s := range rt.subs {
				_ = s.sub.Drain()
				delete(rt.subs, p)
			}
			_ = n.bus.Conn().Flush()
			return
		case <-rt.wake:
		case <-tick.C:
		}
		n.reconcileRoutes(rt)
		if stop == nil && len(rt.subs) == 0 {
			return
		}
	}
}

// wakeTextRouter asks the router to look at a new table now.
func (n *Node) wakeTextRouter() {
	if rt := n.textRoutes.Load(); rt != nil {
		select {
		case rt.wake <- struct{}{}:
		default:
		}
	}
}

// stopTextRouter hands the routed subjects this node holds over to the
// nodes that take them (within routeHandOff), then drops the rest.
func (n *Node) stopTextRouter() {
	if rt := n.textRoutes.Load(); rt != nil {
		rt.once.Do(func() { close(rt.stop) })
		<-rt.done
	}
}

// reconcileRoutes subscribes and unsubscribes the partitions' routed
// subjects as wantRouted says.
func (n *Node) reconcileRoutes(rt *textRouter) {
	r := n.routing.Load()
	leaving := n.leaving.Load()
	now := time.Now()
	changed := false
	var holders map[string]int // the cluster's routed subscriptions by subject; looked up once, when needed
	known, looked := false, false
	for p := range n.cfg.Partitions {
		s := rt.subs[p]
		st := routeState{subscribed: s != nil}
		st.leads = !leaving && (r == nil || r.primary(p))
		st.serves = st.leads && (n.repl == nil || n.repl.Ready(p))
		if r != nil && !leaving {
			owners := r.table.Owners(p)
			st.standIn = len(owners) > 1 && owners[1] == r.self
		}
		if st.serves && st.subscribed && s.undesired.IsZero() {
			continue // the common case: no need to ask the server
		}
		if !st.serves && !st.leads && !st.standIn && !st.subscribed {
			continue
		}
		if !looked {
			holders, known = n.bus.QueueSubscribers(routedQueue)
			looked = true
		}
		st.others = -1
		if known {
			// Subscriptions in the queue group on the subject itself: an
			// observer (`nats sub '>'`) answers nothing and is not counted.
			st.others = holders[rt.subjects[p]]
			if st.subscribed {
				st.others--
			}
			st.others = max(st.others, 0)
		}
		if st.subscribed && !st.serves {
			if s.undesired.IsZero() {
				s.undesired = now
			}
			st.undesired = now.Sub(s.undesired)
		}
		switch want := wantRouted(st); {
		case want && !st.subscribed:
			sub, err := n.bus.Conn().QueueSubscribe(rt.subjects[p], routedQueue, func(msg *nats.Msg) { n.handleRouted(rt, msg) })
			if err != nil {
				n.log.Error("cannot take partition's text requests", "partition", p, "err", err)
				continue
			}
			rt.subs[p] = &routedSub{sub: sub}
			changed = true
		case !want && st.subscribed:
			// Drain, not Unsubscribe: what the server has delivered
			// already is still answered (forwarded), not dropped.
			_ = s.sub.Drain()
			delete(rt.subs, p)
			changed = true
		case want && st.serves:
			s.undesired = time.Time{}
		}
	}
	if changed {
		_ = n.bus.Conn().Flush()
	}
}

// handleRouted serves a text-API request the server routed to a partition
// this node holds: as the text endpoint of its op would, with the subject
// the client sent.
func (n *Node) handleRouted(rt *textRouter, msg *nats.Msg) {
	_, op, key, ok := n.subj.ParseRouted(msg.Subject)
	h := rt.handlers[op]
	if !ok || h == nil {
		respondMsgError(msg, errBadRequest("%s is not a text-API operation", msg.Subject))
		return
	}
	h(&detached{nc: n.bus.Conn(), subject: n.subj.Text(op, key), reply: msg.Reply, data: msg.Data, headers: micro.Headers(msg.Header)})
}

// TextOps are the names of the text API's keyed operations, in the order
// of their mappings ("roost mappings", docs/PROTOCOL.md).
func TextOps() []string {
	var n *Node // only the names are read
	var names []string
	for _, op := range n.textOps() {
		names = append(names, op.name)
	}
	return names
}
