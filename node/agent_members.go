package node

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/roostkv/roost/actors/membership"
)

// Members over HTTP: consul's GET /v1/agent/members and GET
// /v1/health/state/<state> in consul's JSON shapes, and Roost's own
// GET /v1/roost/members and PUT /v1/roost/members/<node>/tags.

// consul's serf member status codes (api.AgentMember.Status).
const (
	agentStatusAlive   = 1 // alive and suspect members: still routed to
	agentStatusLeaving = 2 // never sent: a Roost node is left as soon as it announces it
	agentStatusLeft    = 3
	agentStatusFailed  = 4 // dead members
)

// agentProtocol is the protocol version reported in the Protocol* and
// Delegate* fields of a member, and in its vsn tags: Roost's heartbeat
// protocol, version 1.
const agentProtocol = 1

// consul's member tags (api.MemberTagKey*), which `consul members` reads
// for its Type, Build, Protocol and DC columns.
const (
	consulTagRole       = "role"  // consulRoleServer or consulRoleClient; anything else shows as type "unknown"
	consulTagDatacenter = "dc"    // the member's datacenter
	consulTagBuild      = "build" // version[:revision]; consul members shows what is before the colon
	consulTagVersion    = "vsn"   // protocol version spoken
	consulTagVersionMin = "vsn_min"
	consulTagVersionMax = "vsn_max"
	consulRoleServer    = "consul" // a server agent: Roost's server role
	consulRoleClient    = "node"   // a client agent: Roost's proxy role
)

// agentMember is a member in the shape of consul's api.AgentMember. Tags
// holds the member's own tags plus consul's (role, dc, build, vsn,
// vsn_min, vsn_max) and Roost's reserved keys (roost_role, id, status,
// nats, http, partitions), which win over a user tag of the same name.
type agentMember struct {
	Name        string
	Addr        string // host of the member's NATS client URL
	Port        uint16 // port of the member's NATS client URL
	Tags        map[string]string
	Status      int
	ProtocolMin uint8
	ProtocolMax uint8
	ProtocolCur uint8
	DelegateMin uint8
	DelegateMax uint8
	DelegateCur uint8
}

// agentStatus maps a Roost status to consul's code. A suspect member is
// still alive for routing, as serf's suspect members are alive; its status
// tag says "suspect".
func agentStatus(s membership.Status) int {
	switch s {
	case membership.Alive, membership.Suspect:
		return agentStatusAlive
	case membership.Left:
		return agentStatusLeft
	case membership.Dead:
		return agentStatusFailed
	}
	return 0
}

// toAgentMember is m as consul shows a member; dc is the datacenter of a
// member that does not say its own (a node older than --datacenter).
func toAgentMember(m membership.Member, dc string) agentMember {
	tags := maps.Clone(m.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags[consulTagRole] = consulRoleClient
	if m.Role == RoleServer {
		tags[consulTagRole] = consulRoleServer
	}
	tags[consulTagDatacenter] = cmp.Or(m.Datacenter, dc)
	if m.Build != "" {
		tags[consulTagBuild] = m.Build + ":roost"
	}
	proto := strconv.Itoa(agentProtocol)
	tags[consulTagVersion], tags[consulTagVersionMin], tags[consulTagVersionMax] = proto, proto, proto
	tags["roost_role"] = m.Role
	tags["id"] = m.ID
	tags["status"] = string(m.Status)
	tags["nats"] = m.Addr
	tags["partitions"] = strconv.Itoa(m.Partitions)
	if m.HTTP != "" {
		tags["http"] = m.HTTP
	}
	am := agentMember{
		Name: m.Name, Tags: tags, Status: agentStatus(m.Status),
		ProtocolMin: agentProtocol, ProtocolMax: agentProtocol, ProtocolCur: agentProtocol,
		DelegateMin: agentProtocol, DelegateMax: agentProtocol, DelegateCur: agentProtocol,
	}
	if u, err := url.Parse(m.Addr); err == nil {
		am.Addr = u.Hostname()
		if p, err := strconv.ParseUint(u.Port(), 10, 16); err == nil {
			am.Port = uint16(p)
		}
	}
	return am
}

// httpAgentMembers answers consul's GET /v1/agent/members: every member of
// this node's view, left and dead ones included, sorted by name. wan and
// segment are ignored: Roost has one pool.
func (n *Node) httpAgentMembers(w http.ResponseWriter, _ *http.Request) {
	view := n.members.View()
	out := make([]agentMember, len(view.Members))
	for i, m := range view.Members {
		out[i] = toAgentMember(m, n.cfg.datacenter())
	}
	writeJSON(w, http.StatusOK, out)
}

// agentCheck is a health check in the shape of consul's api.HealthCheck.
type agentCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string
	ExposedPort int
	Definition  struct{}
	CreateIndex uint64
	ModifyIndex uint64
}

// consul's node health check, which Roost's heartbeats stand in for.
const (
	serfCheckID      = "serfHealth"
	serfCheckName    = "Serf Health Status"
	serfAliveOutput  = "Agent alive and reachable"
	serfFailedOutput = "Agent not live or unreachable"

	healthPassing  = "passing"
	healthWarning  = "warning"
	healthCritical = "critical"
	healthAny      = "any"
)

// httpHealthState answers consul's GET /v1/health/state/<state>: one node
// check per member that has not left (left members are out of the catalog,
// as in consul): passing when alive, critical when suspect or dead. No
// token needed.
func (n *Node) httpHealthState(w http.ResponseWriter, r *http.Request) {
	state := r.PathValue("state")
	switch state {
	case healthAny, healthPassing, healthWarning, healthCritical:
	default:
		http.Error(w, fmt.Sprintf("Invalid state: %q: want any, passing, warning or critical", state), http.StatusBadRequest)
		return
	}
	view := n.members.View()
	out := []agentCheck{}
	for _, m := range view.Members {
		c := agentCheck{
			Node: m.Name, CheckID: serfCheckID, Name: serfCheckName,
			Status: healthPassing, Output: serfAliveOutput, ServiceTags: []string{},
			CreateIndex: view.Version, ModifyIndex: view.Version,
		}
		switch m.Status {
		case membership.Left:
			continue
		case membership.Suspect:
			c.Status, c.Output = healthCritical, serfFailedOutput+" (suspect: missed heartbeats)"
		case membership.Dead:
			c.Status, c.Output = healthCritical, serfFailedOutput
		}
		if state == healthAny || state == c.Status {
			out = append(out, c)
		}
	}
	agentConsulMeta(w, view.Version)
	writeJSON(w, http.StatusOK, out)
}

// agentConsulMeta sets the query-meta headers consul clients read.
func agentConsulMeta(w http.ResponseWriter, index uint64) {
	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(max(index, 1), 10))
	h.Set("X-Consul-KnownLeader", "true")
	h.Set("X-Consul-LastContact", "0")
}

// memberStatusesFilter are the statuses ?status= accepts.
var memberStatusesFilter = []membership.Status{membership.Alive, membership.Suspect, membership.Dead, membership.Left, membership.Refused}

// httpRoostMembers answers GET /v1/roost/members: this node's MembersReply,
// filtered by ?tag=k:v (a tag with that value; "k" alone: the tag is set;
// repeat for all of several) and ?status=S (one of several, comma-separated
// or repeated; "refused" selects the refused peers).
func (n *Node) httpRoostMembers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var statuses []membership.Status
	for _, v := range q["status"] {
		for s := range strings.SplitSeq(v, ",") {
			st := membership.Status(strings.TrimSpace(s))
			if !slices.Contains(memberStatusesFilter, st) {
				http.Error(w, fmt.Sprintf("bad status %q: want alive, suspect, dead, left or refused", s), http.StatusBadRequest)
				return
			}
			statuses = append(statuses, st)
		}
	}
	type tagFilter struct {
		key, value string
		anyValue   bool
	}
	var tags []tagFilter
	for _, v := range q["tag"] {
		k, val, hasValue := strings.Cut(v, ":")
		if k == "" {
			http.Error(w, fmt.Sprintf("bad tag filter %q: want key:value or key", v), http.StatusBadRequest)
			return
		}
		tags = append(tags, tagFilter{key: k, value: val, anyValue: !hasValue})
	}
	match := func(m membership.Member) bool {
		if len(statuses) > 0 && !slices.Contains(statuses, m.Status) {
			return false
		}
		for _, f := range tags {
			v, ok := m.Tags[f.key]
			if !ok || (!f.anyValue && v != f.value) {
				return false
			}
		}
		return true
	}
	reply := n.Members()
	members := reply.Members[:0:0]
	for _, m := range reply.Members {
		if match(m.Member) {
			members = append(members, m)
		}
	}
	reply.Members = members
	var refused []membership.Member
	for _, m := range reply.Refused {
		if match(m) {
			refused = append(refused, m)
		}
	}
	reply.Refused = refused
	writeJSON(w, http.StatusOK, reply)
}

// Limits of PUT /v1/roost/members/<node>/tags.
const (
	maxTagsBody  = 64 << 10        // bytes of the JSON body
	tagsTimeout  = 5 * time.Second // for the target node to apply them
	tagsSeenWait = 2 * time.Second // for this node's view to show them
)

// TagsReply is the answer of PUT /v1/roost/members/<node>/tags, and of the
// node admin subject "tags" that carries it to the target node.
type TagsReply struct {
	Node  string            `json:"node"`
	Tags  map[string]string `json:"tags"`
	Code  int               `json:"code,omitempty"`  // an error's HTTP status; 0 = done
	Error string            `json:"error,omitempty"` // why not
}

// httpRoostTags answers PUT /v1/roost/members/<node>/tags: the body, a JSON
// object of string values, replaces that node's tags. The target node sets
// them itself (membership.SetTags, over the bus); the answer comes once it
// has, and once this node's view shows them (or tagsSeenWait passed).
func (n *Node) httpRoostTags(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("node")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTagsBody))
	if err != nil {
		http.Error(w, fmt.Sprintf("tags body over %d bytes", maxTagsBody), http.StatusRequestEntityTooLarge)
		return
	}
	var tags map[string]string
	if err := json.Unmarshal(body, &tags); err != nil {
		http.Error(w, fmt.Sprintf(`tags must be a JSON object of strings, like {"zone":"a"}: %v`, err), http.StatusBadRequest)
		return
	}
	if _, ok := tags[""]; ok {
		http.Error(w, "a tag needs a non-empty name", http.StatusBadRequest)
		return
	}
	if tags == nil {
		tags = map[string]string{}
	}
	m, ok := n.members.View().Find(name)
	switch {
	case !ok:
		http.Error(w, fmt.Sprintf("no member named %q", name), http.StatusNotFound)
		return
	case m.Status != membership.Alive && m.Status != membership.Suspect:
		http.Error(w, fmt.Sprintf("member %q is %s: only a live member can be re-tagged", name, m.Status), http.StatusConflict)
		return
	}
	req, _ := json.Marshal(tags)
	msg, err := n.bus.Conn().Request(n.subj.NodeAdmin(m.ID, adminTags), req, tagsTimeout)
	if err != nil {
		http.Error(w, fmt.Sprintf("member %q did not answer: %v", name, err), http.StatusServiceUnavailable)
		return
	}
	var reply TagsReply
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		http.Error(w, fmt.Sprintf("malformed answer from %q: %v", name, err), http.StatusBadGateway)
		return
	}
	if reply.Code != 0 {
		http.Error(w, reply.Error, reply.Code)
		return
	}
	n.awaitTags(r.Context(), name, reply.Tags) // what it beats: pushed tags merged in
	writeJSON(w, http.StatusOK, reply)
}

// awaitTags waits until this node's view shows member name with tags, or
// tagsSeenWait passes: the target beats at once, so it is one bus hop away.
func (n *Node) awaitTags(ctx context.Context, name string, tags map[string]string) {
	views, cancel := n.members.Subscribe()
	defer cancel()
	timer := time.NewTimer(tagsSeenWait)
	defer timer.Stop()
	for {
		select {
		case v, ok := <-views: // a view change (the first is the current view)
			if !ok {
				return
			}
			if m, found := v.Find(name); found && maps.Equal(m.Tags, tags) {
				return
			}
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// splitHostPort is net.SplitHostPort that also wants a numeric port.
func splitHostPort(addr string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err = strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", p)
	}
	return h, port, nil
}
