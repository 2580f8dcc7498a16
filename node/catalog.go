package node

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/roostkv/roost/actors/membership"
)

// The service catalog, consul-compatible (docs/http.md, "Service catalog").
// A service instance belongs to the node it was registered on (its agent):
// that node keeps it in memory with its checks' timers (catalog_agent.go)
// and writes it, whole, as one reserved key per instance,
//
//	ReservedPrefix + "svc/" + <node name> + "/" + <service ID>
//
// through the normal replicated write path (catalog_store.go), so every
// node reads the catalog as a prefix of its own store's key space, with the
// consul KV API's blocking-query machinery (kv_block.go). The record names
// the process (NodeID) that wrote it: an entry whose process is not a live
// member is left out of every answer at once, and deleted by the primary of
// its key (catalog_sweep.go), so the catalog forgets a node that died or
// left, whoever crashed meanwhile.
//
// This file holds the records and the pure logic: health aggregation,
// filters and the balancing order.

// Check statuses, as consul names them.
const (
	checkPassing  = "passing"
	checkWarning  = "warning"
	checkCritical = "critical"
)

// svcArea is the reserved area of the catalog's keys.
const svcArea = "svc"

// svcPrefix is the prefix of every catalog key.
var svcPrefix = reservedKey(svcArea, "")

// svcKey is the key of one service instance of a node.
func svcKey(node, serviceID string) string { return svcPrefix + node + "/" + serviceID }

// svcRecord is what the catalog stores per service instance (JSON).
type svcRecord struct {
	Node    string        // name of the node it was registered on
	NodeID  string        // that node's process ID: a record of an earlier run is not live
	Service agentService  // the instance, in consul's AgentService shape
	Checks  []healthCheck // its checks, with their current status
}

// agentService is consul's AgentService, the fields Roost keeps.
type agentService struct {
	ID                string
	Service           string
	Tags              []string
	Meta              map[string]string
	Port              int
	Address           string
	Weights           agentWeights
	EnableTagOverride bool
	CreateIndex       uint64 `json:",omitempty"`
	ModifyIndex       uint64 `json:",omitempty"`
	Datacenter        string `json:",omitempty"`
}

// agentWeights are consul's weights: the share of traffic an instance takes
// while passing, and while warning (consul's defaults: 1 and 1).
type agentWeights struct {
	Passing int
	Warning int
}

// healthCheck is consul's HealthCheck (and AgentCheck) shape.
type healthCheck struct {
	Node        string
	CheckID     string
	Name        string
	Status      string
	Notes       string
	Output      string
	ServiceID   string
	ServiceName string
	ServiceTags []string
	Type        string // "ttl", "http", or "serf" for the node's own
	Definition  checkDefinition
	CreateIndex uint64 `json:",omitempty"`
	ModifyIndex uint64 `json:",omitempty"`
}

// checkDefinition is consul's HealthCheckDefinition, the fields Roost uses.
type checkDefinition struct {
	HTTP                           string `json:",omitempty"`
	Method                         string `json:",omitempty"`
	Interval                       string `json:",omitempty"`
	Timeout                        string `json:",omitempty"`
	TTL                            string `json:",omitempty"`
	DeregisterCriticalServiceAfter string `json:",omitempty"`
}

// catalogNode is consul's Node shape, for health entries.
type catalogNode struct {
	ID              string
	Node            string
	Address         string
	Datacenter      string
	TaggedAddresses map[string]string
	Meta            map[string]string
	CreateIndex     uint64
	ModifyIndex     uint64
}

// serviceEntry is consul's ServiceEntry: one item of /v1/health/service.
type serviceEntry struct {
	Node    catalogNode
	Service agentService
	Checks  []healthCheck
}

// catalogService is consul's CatalogService: one item of /v1/catalog/service.
type catalogService struct {
	ID                       string
	Node                     string
	Address                  string
	Datacenter               string
	TaggedAddresses          map[string]string
	NodeMeta                 map[string]string
	ServiceID                string
	ServiceName              string
	ServiceAddress           string
	ServiceTags              []string
	ServiceMeta              map[string]string
	ServicePort              int
	ServiceWeights           agentWeights
	ServiceEnableTagOverride bool
	CreateIndex              uint64
	ModifyIndex              uint64
}

// catalogEntry is a live catalog record with what the answers need about
// its node.
type catalogEntry struct {
	rec     svcRecord
	member  membership.Member // the node it belongs to, live
	created uint64            // CreateIndex: the version that created the key
	version uint64            // ModifyIndex: the key's version
}

// liveRecord reports whether rec belongs to a live process of view: its
// node is alive or suspect, and is the very process that wrote it.
func liveRecord(view membership.View, rec *svcRecord) (membership.Member, bool) {
	m, ok := view.Find(rec.Node)
	if !ok || m.ID != rec.NodeID || (m.Status != membership.Alive && m.Status != membership.Suspect) {
		return membership.Member{}, false
	}
	return m, true
}

// serfCheck is the node's own check, as consul's serfHealth: passing while
// its node is alive, critical while it is suspect (it misses heartbeats;
// it leaves the catalog once declared dead).
func serfCheck(m membership.Member) healthCheck {
	c := healthCheck{Node: m.Name, CheckID: "serfHealth", Name: "Serf Health Status", Type: "serf", Status: checkPassing, Output: "Agent alive and reachable"}
	if m.Status != membership.Alive {
		c.Status, c.Output = checkCritical, "Agent not live or unreachable"
	}
	return c
}

// aggregate is the status of a set of checks: the worst of them; passing
// when there is none.
func aggregate(checks []healthCheck) string {
	worst := checkPassing
	for _, c := range checks {
		switch c.Status {
		case checkCritical:
			return checkCritical
		case checkWarning:
			worst = checkWarning
		case checkPassing:
		default:
			return checkCritical // unknown: not healthy
		}
	}
	return worst
}

// hasTags reports whether tags hold every one of want (consul's ?tag=, which
// may repeat).
func hasTags(tags, want []string) bool {
	for _, w := range want {
		if !slices.Contains(tags, w) {
			return false
		}
	}
	return true
}

// sortEntries orders entries by node name, then service ID: the order of
// every catalog answer but a balanced one.
func sortEntries(es []serviceEntry) {
	slices.SortFunc(es, func(a, b serviceEntry) int {
		return cmp.Or(strings.Compare(a.Node.Node, b.Node.Node), strings.Compare(a.Service.ID, b.Service.ID))
	})
}

// Balancing (docs/http.md, "Balancing"): healthy instances are ordered by
// weighted random sampling without replacement, each instance weighing its
// Weights.Passing (Weights.Warning while a check warns; consul's weights),
// so that the first of the list is instance i with probability
// w_i / Σw and a client that takes the first spreads its load by weight.
// Every node computes it alone, with no shared counter to keep in step.
// Efraimidis–Spirakis: each instance draws u in (0,1) and is ranked by
// u^(1/w), highest first. An instance of weight 0 is never preferred: it
// comes last, in sorted order.

// balance orders es by weighted random sampling, drawing from r.
func balance(es []serviceEntry, r *rand.Rand) {
	sortEntries(es) // a fixed start, so that a seeded r gives a fixed order
	keys := make([]float64, len(es))
	for i := range es {
		w := weightOf(&es[i])
		if w <= 0 {
			keys[i] = -1
			continue
		}
		u := r.Float64()
		for u == 0 {
			u = r.Float64()
		}
		keys[i] = math.Pow(u, 1/float64(w))
	}
	idx := make([]int, len(es))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(keys[b], keys[a]) })
	out := make([]serviceEntry, len(es))
	for i, j := range idx {
		out[i] = es[j]
	}
	copy(es, out)
}

// weightOf is an entry's weight in balancing: Weights.Warning when one of
// its checks warns, else Weights.Passing.
func weightOf(e *serviceEntry) int {
	if aggregate(e.Checks) == checkWarning {
		return e.Service.Weights.Warning
	}
	return e.Service.Weights.Passing
}

// healthFilter is what a /v1/health/service query keeps.
type healthFilter struct {
	name    string   // service name
	tags    []string // ?tag=, every one required
	passing bool     // ?passing: only instances whose checks all pass
}

// healthEntries picks and shapes the entries of f from the catalog, in
// sorted order.
func healthEntries(all []catalogEntry, f healthFilter) []serviceEntry {
	out := []serviceEntry{}
	for i := range all {
		e := &all[i]
		if e.rec.Service.Service != f.name || !hasTags(e.rec.Service.Tags, f.tags) {
			continue
		}
		se := e.serviceEntry()
		if f.passing && aggregate(se.Checks) != checkPassing {
			continue
		}
		out = append(out, se)
	}
	sortEntries(out)
	return out
}

// serviceEntry is e in consul's health shape: its node's serfHealth check
// first, then the service's own.
func (e *catalogEntry) serviceEntry() serviceEntry {
	svc := e.rec.Service
	svc.CreateIndex, svc.ModifyIndex = e.created, e.version
	svc.Datacenter = e.member.Datacenter
	checks := make([]healthCheck, 0, len(e.rec.Checks)+1)
	checks = append(checks, serfCheck(e.member))
	for _, c := range e.rec.Checks {
		c.ServiceTags = svc.Tags
		c.CreateIndex, c.ModifyIndex = e.created, e.version
		checks = append(checks, c)
	}
	return serviceEntry{Node: nodeOf(e.member), Service: svc, Checks: checks}
}

// catalogService is e in consul's catalog shape.
func (e *catalogEntry) catalogService() catalogService {
	n := nodeOf(e.member)
	s := &e.rec.Service
	return catalogService{
		ID: n.ID, Node: n.Node, Address: n.Address, Datacenter: n.Datacenter,
		TaggedAddresses: n.TaggedAddresses, NodeMeta: n.Meta,
		ServiceID: s.ID, ServiceName: s.Service, ServiceAddress: s.Address, ServiceTags: s.Tags,
		ServiceMeta: s.Meta, ServicePort: s.Port, ServiceWeights: s.Weights, ServiceEnableTagOverride: s.EnableTagOverride,
		CreateIndex: e.created, ModifyIndex: e.version,
	}
}

// nodeOf is a member in consul's Node shape. Its address is the host of its
// HTTP API (or of its NATS URL without one); its meta, its tags.
func nodeOf(m membership.Member) catalogNode {
	addr := hostOf(m.HTTP)
	if addr == "" {
		addr = hostOf(strings.TrimPrefix(strings.TrimPrefix(m.Addr, "nats://"), "tls://"))
	}
	meta := map[string]string{}
	for k, v := range m.Tags {
		meta[k] = v
	}
	return catalogNode{ID: m.ID, Node: m.Name, Address: addr, Datacenter: m.Datacenter,
		TaggedAddresses: map[string]string{"lan": addr, "wan": addr}, Meta: meta}
}

// hostOf is the host of host:port, "127.0.0.1" for an unspecified one
// (":7721", "0.0.0.0:7721"), "" when addr is not host:port.
func hostOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return ""
	}
	host := strings.Trim(addr[:i], "[]")
	if host == "" || host == "0.0.0.0" || host == "::" {
		return "127.0.0.1"
	}
	return host
}
