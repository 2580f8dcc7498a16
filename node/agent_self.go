package node

import (
	"cmp"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"slices"
	"strconv"

	"github.com/roostkv/roost/actors/membership"
)

// What consul's own tooling asks an agent first: GET /v1/agent/self (who
// and where the agent is), and GET /v1/status/leader and /v1/status/peers
// (the raft leader and servers), in consul's JSON shapes (docs/http.md,
// "Agent self and status").

// DefaultDatacenter is the datacenter a node reports when --datacenter is
// not given, as consul's default.
const DefaultDatacenter = "dc1"

// datacenterRE is what --datacenter accepts: consul's datacenter names.
var datacenterRE = regexp.MustCompile(`^[a-z0-9_-]+$`)

// datacenter is c.Datacenter, or the default.
func (c Config) datacenter() string { return cmp.Or(c.Datacenter, DefaultDatacenter) }

// agentSelf is GET /v1/agent/self in consul's shape (api.Agent.Self reads
// it as map[string]map[string]any).
type agentSelf struct {
	Config      agentSelfConfig
	DebugConfig map[string]any
	Coord       *struct{} // network coordinates: Roost keeps none
	Member      agentMember
	Stats       map[string]map[string]string
	Meta        map[string]string // consul's node meta: the node's tags
}

// agentSelfConfig is the Config part of consul's agent self.
type agentSelfConfig struct {
	Datacenter        string
	PrimaryDatacenter string
	NodeName          string
	NodeID            string
	Revision          string
	Server            bool
	Version           string
}

// httpAgentSelf answers consul's GET /v1/agent/self: this node's config,
// its member entry as /v1/agent/members gives it, and figures in consul's
// Stats sections.
func (n *Node) httpAgentSelf(w http.ResponseWriter, _ *http.Request) {
	view := n.members.View()
	me, ok := view.Find(n.cfg.Name)
	if !ok { // before the first view: what the node will announce
		me = membership.Member{ID: n.id, Name: n.cfg.Name, Role: n.cfg.Role, Tags: n.cfg.Tags, Addr: n.bus.ClientURL(),
			HTTP: n.httpAddr, Partitions: n.cfg.Partitions, Datacenter: n.cfg.datacenter(), Build: Version, Status: membership.Alive}
	}
	dc := n.cfg.datacenter()
	server := n.cfg.Role == RoleServer
	debug := map[string]any{
		"Datacenter":        dc,
		"PrimaryDatacenter": dc,
		"NodeName":          n.cfg.Name,
		"NodeID":            n.id,
		"ServerMode":        server,
		"ConnectEnabled":    false, // no service mesh
		"DisableRemoteExec": true,  // no consul exec: Roost runs no commands
		"HTTPAddrs":         []string{"tcp://" + n.httpAddr},
	}
	if addr := n.bus.ClusterAddr(); addr != "" {
		// What consul's docs join with: PUT /v1/agent/join/<this, less tcp://>.
		debug["SerfAdvertiseAddrLAN"] = "tcp://" + addr
	}
	members := map[membership.Status]int{}
	for _, m := range view.Members {
		members[m.Status]++
	}
	cs := n.clusterStatus()
	leader, _ := n.statusLeader()
	self := agentSelf{
		Config: agentSelfConfig{
			Datacenter: dc, PrimaryDatacenter: dc, NodeName: n.cfg.Name, NodeID: n.id,
			Server: server, Version: Version,
		},
		DebugConfig: debug,
		Member:      toAgentMember(me, dc),
		Stats: map[string]map[string]string{
			"build": {"version": Version, "revision": "", "prerelease": ""},
			"consul": {
				"server":            strconv.FormatBool(server),
				"leader":            "false", // no node leads the cluster; see /v1/status/leader
				"leader_addr":       leader,
				"known_datacenters": "1",
			},
			"serf_lan": {
				"members": strconv.Itoa(len(view.Members)),
				"alive":   strconv.Itoa(members[membership.Alive]),
				"suspect": strconv.Itoa(members[membership.Suspect]),
				"failed":  strconv.Itoa(members[membership.Dead]),
				"left":    strconv.Itoa(members[membership.Left]),
				"version": strconv.FormatUint(view.Version, 10),
			},
			"roost": {
				"role":       n.cfg.Role,
				"partitions": strconv.Itoa(n.cfg.Partitions),
				"replicas":   strconv.Itoa(n.cfg.Replicas),
				"primary_of": strconv.Itoa(len(cs.PrimaryOf)),
				"replica_of": strconv.Itoa(len(cs.ReplicaOf)),
				"nats":       n.bus.ClientURL(),
			},
			"runtime": {
				"os":         runtime.GOOS,
				"arch":       runtime.GOARCH,
				"version":    runtime.Version(),
				"goroutines": strconv.Itoa(runtime.NumGoroutine()),
				"max_procs":  strconv.Itoa(runtime.GOMAXPROCS(0)),
				"cpu_count":  strconv.Itoa(runtime.NumCPU()),
			},
		},
		Meta: n.currentTags(),
	}
	if self.Meta == nil {
		self.Meta = map[string]string{}
	}
	writeJSON(w, http.StatusOK, self)
}

// statusPeers returns the host:port of every server the answering node's
// partition table is computed over (the live data-holding members), in
// name order: consul's raft peers. The address is the member's NATS client
// address, as in /v1/agent/members.
func (n *Node) statusPeers() []string {
	r := n.routing.Load()
	if r == nil {
		return []string{}
	}
	names := slices.Clone(r.table.Members())
	slices.Sort(names)
	peers := make([]string, 0, len(names))
	for _, name := range names {
		if m, ok := r.view.Find(name); ok {
			if addr := memberHostPort(m); addr != "" {
				peers = append(peers, addr)
			}
		}
	}
	return peers
}

// statusLeader returns the first of statusPeers, or "" when there is none.
// Roost has no leader (every server is primary for its share of the
// partitions); this answer is the one every node gives for the same view,
// is one of the peers, and is "" exactly when no server is live and
// nothing can be written — which is what tools read consul's for.
func (n *Node) statusLeader() (string, []string) {
	peers := n.statusPeers()
	if len(peers) == 0 {
		return "", peers
	}
	return peers[0], peers
}

// httpStatusLeader answers consul's GET /v1/status/leader: a JSON string.
func (n *Node) httpStatusLeader(w http.ResponseWriter, _ *http.Request) {
	leader, _ := n.statusLeader()
	writeJSON(w, http.StatusOK, leader)
}

// httpStatusPeers answers consul's GET /v1/status/peers: a JSON array of
// strings.
func (n *Node) httpStatusPeers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.statusPeers())
}

// memberHostPort is the host:port of a member's NATS client URL, "" when it
// has none.
func memberHostPort(m membership.Member) string {
	u, err := url.Parse(m.Addr)
	if err != nil || u.Host == "" {
		return ""
	}
	return net.JoinHostPort(u.Hostname(), u.Port())
}
