package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/bus"
)

// Cluster operations over HTTP: consul's join, leave and force-leave, and
// the bus subscriptions that carry them (and re-tagging, and the
// dashboard's figures) to other nodes.

// Verbs of this node's admin subjects (wire.Subjects.NodeAdmin).
const (
	adminTags  = "tags"  // JSON tags in, TagsReply out: set this node's tags
	adminStats = "stats" // empty in, NodeStats out: this node's figures
)

// Timeouts of the cluster operations.
const (
	joinDialTimeout   = 2 * time.Second // to check that a join address answers
	leaveTimeout      = 2 * time.Second // to announce our leave
	forceLeaveTimeout = 2 * time.Second // for every live node to acknowledge a force-leave
)

// startAgent subscribes to the force-leave broadcast (no queue group: every
// node acts on it) and to this node's admin subjects.
func (n *Node) startAgent() error {
	nc := n.bus.Conn()
	subs := []struct {
		subject string
		handler nats.MsgHandler
	}{
		{n.subj.ForceLeave(), n.onForceLeave},
		{n.subj.NodeAdmin(n.id, adminTags), n.onAdminTags},
		{n.subj.NodeAdmin(n.id, adminStats), n.onAdminStats},
	}
	for _, s := range subs {
		sub, err := nc.Subscribe(s.subject, s.handler)
		if err != nil {
			return fmt.Errorf("node: subscribe %s: %w", s.subject, err)
		}
		n.agentSubs = append(n.agentSubs, sub)
	}
	return nc.Flush()
}

// stopAgent ends the subscriptions of startAgent.
func (n *Node) stopAgent() {
	for _, s := range n.agentSubs {
		_ = s.Unsubscribe()
	}
	n.agentSubs = nil
}

// httpAgentJoin answers consul's PUT /v1/agent/join/<address>: the embedded
// NATS server routes to the server whose cluster address (--cluster-listen)
// is host:port; membership then hears the peers' heartbeats. The route is
// added by reloading the server's options. A node on an external NATS, or
// started without a cluster port, cannot join at run time: 501.
func (n *Node) httpAgentJoin(w http.ResponseWriter, r *http.Request) {
	addr := r.PathValue("address")
	if _, _, err := splitHostPort(addr); err != nil {
		http.Error(w, fmt.Sprintf("bad join address %q: want the host:port of a node's --cluster-listen: %v", addr, err), http.StatusBadRequest)
		return
	}
	conn, err := net.DialTimeout("tcp", addr, joinDialTimeout)
	if err != nil {
		http.Error(w, fmt.Sprintf("Join failed: %s does not answer: %v", addr, err), http.StatusInternalServerError)
		return
	}
	_ = conn.Close()
	switch err := n.bus.AddRoute(addr); {
	case errors.Is(err, bus.ErrExternal):
		http.Error(w, "Join not supported: this node uses an external NATS (--nats), which does the clustering; join the NATS servers instead", http.StatusNotImplemented)
	case errors.Is(err, bus.ErrNoCluster):
		http.Error(w, "Join not supported: this node was started without --cluster-listen or --join, and a cluster port cannot be opened at run time; restart it with --cluster-listen", http.StatusNotImplemented)
	case errors.Is(err, bus.ErrConfig):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case err != nil:
		http.Error(w, "Join failed: "+err.Error(), http.StatusInternalServerError)
	default:
		n.log.Info("joining", "route", addr)
		w.WriteHeader(http.StatusOK)
	}
}

// httpAgentLeave answers consul's PUT /v1/agent/leave: the node announces
// its leave (peers mark it left at once), answers, and then stops: through
// Config.OnLeave (`roost serve` exits), or by itself when that is nil.
func (n *Node) httpAgentLeave(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), leaveTimeout)
	defer cancel()
	if err := n.members.Leave(ctx); err != nil {
		http.Error(w, "Leave failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	n.log.Info("leaving on request", "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	stop := n.cfg.OnLeave
	if stop == nil {
		stop = n.Stop
	}
	go stop() // after this handler returns: Stop waits for it
}

// forceLeaveMsg is the body of the force-leave broadcast.
type forceLeaveMsg struct {
	Name string `json:"name"`
}

// forceLeaveAck is each node's answer to the force-leave broadcast.
type forceLeaveAck struct {
	Node  string `json:"node"`
	Code  int    `json:"code,omitempty"` // an error's HTTP status; 0 = done
	Error string `json:"error,omitempty"`
}

// httpAgentForceLeave answers consul's PUT /v1/agent/force-leave/<node>: a
// suspect or dead member is marked left by every node. This node checks its
// own view first (404 unknown, 409 alive or this node itself), then
// broadcasts the name and waits for every live node's acknowledgement, up
// to forceLeaveTimeout. A member already left is a no-op.
func (n *Node) httpAgentForceLeave(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("node")
	view := n.members.View()
	m, ok := view.Find(name)
	switch {
	case !ok:
		http.Error(w, fmt.Sprintf("agent: No node found with name '%s'", name), http.StatusNotFound)
		return
	case m.Self:
		http.Error(w, fmt.Sprintf("node '%s' is this agent: use PUT /v1/agent/leave", name), http.StatusConflict)
		return
	case m.Status == membership.Alive:
		http.Error(w, fmt.Sprintf("node '%s' is alive: force-leave only ejects suspect or dead nodes", name), http.StatusConflict)
		return
	case m.Status == membership.Left:
		w.WriteHeader(http.StatusOK)
		return
	}
	// Everyone live but the target acknowledges; this node answers too.
	want := map[string]bool{}
	for _, lm := range view.Live("") {
		if lm.Name != name {
			want[lm.Name] = true
		}
	}
	acks, err := n.broadcastForceLeave(name, want)
	if err != nil {
		http.Error(w, "Force leave failed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if a, ok := acks[n.cfg.Name]; ok && a.Code != 0 {
		http.Error(w, a.Error, a.Code)
		return
	}
	var silent, refused []string
	for peer := range want {
		switch a, ok := acks[peer]; {
		case !ok:
			silent = append(silent, peer)
		case a.Code != 0:
			refused = append(refused, peer+": "+a.Error)
		}
	}
	if len(silent)+len(refused) > 0 {
		n.log.Warn("force-leave not done by every node; their own failure detection will follow", "member", name, "silent", silent, "refused", refused)
	}
	w.WriteHeader(http.StatusOK)
}

// broadcastForceLeave publishes name on the force-leave subject and gathers
// the answers until every node in want has answered or forceLeaveTimeout
// passes.
func (n *Node) broadcastForceLeave(name string, want map[string]bool) (map[string]forceLeaveAck, error) {
	nc := n.bus.Conn()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	data, _ := json.Marshal(forceLeaveMsg{Name: name})
	if err := nc.PublishRequest(n.subj.ForceLeave(), inbox, data); err != nil {
		return nil, err
	}
	acks := map[string]forceLeaveAck{}
	deadline := time.Now().Add(forceLeaveTimeout)
	for pending := len(want); pending > 0; {
		msg, err := sub.NextMsg(time.Until(deadline))
		if err != nil { // timeout: the caller reports who is missing
			break
		}
		var a forceLeaveAck
		if json.Unmarshal(msg.Data, &a) != nil {
			continue
		}
		if _, dup := acks[a.Node]; !dup && want[a.Node] {
			pending--
		}
		acks[a.Node] = a
	}
	return acks, nil
}

// onForceLeave marks the member named in a force-leave broadcast left, and
// acknowledges.
func (n *Node) onForceLeave(msg *nats.Msg) {
	var fl forceLeaveMsg
	ack := forceLeaveAck{Node: n.cfg.Name}
	if err := json.Unmarshal(msg.Data, &fl); err != nil || fl.Name == "" {
		ack.Code, ack.Error = http.StatusBadRequest, "malformed force-leave: want {\"name\": ...}"
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), forceLeaveTimeout)
		err := n.members.ForceLeave(ctx, fl.Name)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, membership.ErrUnknownMember):
			ack.Code, ack.Error = http.StatusNotFound, fmt.Sprintf("agent: No node found with name '%s'", fl.Name)
		case errors.Is(err, membership.ErrAlive), errors.Is(err, membership.ErrSelf):
			ack.Code, ack.Error = http.StatusConflict, fmt.Sprintf("node '%s' is alive as seen by %s: %v", fl.Name, n.cfg.Name, err)
		default:
			ack.Code, ack.Error = http.StatusInternalServerError, err.Error()
		}
	}
	if msg.Reply != "" {
		data, _ := json.Marshal(ack)
		_ = msg.Respond(data)
	}
}

// onAdminTags sets this node's tags from a PUT /v1/roost/members/<node>/tags
// made on any node.
func (n *Node) onAdminTags(msg *nats.Msg) {
	reply := TagsReply{Node: n.cfg.Name}
	var tags map[string]string
	if err := json.Unmarshal(msg.Data, &tags); err != nil {
		reply.Code, reply.Error = http.StatusBadRequest, "tags must be a JSON object of strings: "+err.Error()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), tagsTimeout)
		beaten, err := n.retag(ctx, tags) // its own tags, with pushed ones merged in (runtime_config.go)
		cancel()
		switch {
		case err == nil:
			reply.Tags = beaten
			if reply.Tags == nil {
				reply.Tags = map[string]string{}
			}
		case errors.Is(err, membership.ErrLeft):
			reply.Code, reply.Error = http.StatusConflict, fmt.Sprintf("member %q has left the cluster", n.cfg.Name)
		default:
			reply.Code, reply.Error = http.StatusInternalServerError, err.Error()
		}
	}
	data, _ := json.Marshal(reply)
	_ = msg.Respond(data)
}
