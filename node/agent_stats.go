package node

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
)

// The dashboard's figures: GET /v1/roost/stats gathers every live member's
// counters (the ones /metrics exposes) over the bus, so a browser talking to
// one node sees the whole cluster. The page derives ops/s from successive
// answers.

// statsTimeout bounds how long GET /v1/roost/stats waits for each node.
const statsTimeout = time.Second

// StatsReply is the answer of GET /v1/roost/stats.
type StatsReply struct {
	Node  string      `json:"node"` // the answering node's name
	View  uint64      `json:"view"` // its membership view's version
	Time  time.Time   `json:"time"` // when the figures were gathered
	Nodes []NodeStats `json:"nodes"`
}

// NodeStats are one member's figures. A member that is not live, or did not
// answer in time, has only its name, id, status, role, HTTP address and
// Error: its JSON carries no figure at all, rather than zeros that would
// read as measured.
type NodeStats struct {
	Name                  string            `json:"name"`
	ID                    string            `json:"id"`
	Status                membership.Status `json:"status"`
	Role                  string            `json:"role"`
	HTTP                  string            `json:"http,omitempty"`
	Ops                   map[string]uint64 `json:"ops,omitempty"` // operations executed there since it started, by kind (get, set, del)
	Errors                uint64            `json:"errors"`        // of those, failed for another reason than a missing key or a CAS mismatch
	Keys                  int64             `json:"keys"`          // entries in its store: its keys and its copies of others' (expired but unswept ones included)
	PrimaryKeys           int64             `json:"primary_keys"`  // live keys of the partitions it leads: the sum over the nodes is the cluster's distinct keys
	Bytes                 int64             `json:"bytes"`
	MaxBytes              int64             `json:"max_bytes"`
	Evictions             int64             `json:"evictions"`
	Expirations           int64             `json:"expirations"`
	Primary               int               `json:"primary"` // partitions it leads, in its own table
	Replica               int               `json:"replica"` // partitions it holds a copy of
	ReplicationLagSeconds float64           `json:"replication_lag_seconds"`
	UptimeSeconds         float64           `json:"uptime_seconds"`
	Loads                 *LoadStats        `json:"loads,omitempty"` // read-through counters (load.go)
	Error                 string            `json:"error,omitempty"`
}

// MarshalJSON leaves the figures out when s has none (Error is set).
func (s NodeStats) MarshalJSON() ([]byte, error) {
	type plain NodeStats // without this method
	if s.Error == "" {
		return json.Marshal(plain(s))
	}
	return json.Marshal(struct {
		Name   string            `json:"name"`
		ID     string            `json:"id"`
		Status membership.Status `json:"status"`
		Role   string            `json:"role"`
		HTTP   string            `json:"http,omitempty"`
		Error  string            `json:"error"`
	}{s.Name, s.ID, s.Status, s.Role, s.HTTP, s.Error})
}

// localStats are this node's figures.
func (n *Node) localStats() NodeStats {
	ops, errs := n.metrics.opTotals()
	st := n.store.Stats()
	s := NodeStats{
		Name: n.cfg.Name, ID: n.id, Status: membership.Alive, Role: n.cfg.Role, HTTP: n.httpAddr,
		Ops: ops, Errors: errs,
		Keys: st.Keys, PrimaryKeys: n.keyCounts().Primary, Bytes: st.Bytes, MaxBytes: st.MaxBytes, Evictions: st.Evictions, Expirations: st.Expirations,
		ReplicationLagSeconds: n.replicationLag().Seconds(),
		UptimeSeconds:         time.Since(n.started).Seconds(),
	}
	ls := n.LoadStats()
	s.Loads = &ls
	if r := n.routing.Load(); r != nil {
		p, rp := r.table.Owned(n.cfg.Name)
		s.Primary, s.Replica = len(p), len(rp)
	}
	return s
}

// onAdminStats answers this node's figures on its admin subject.
func (n *Node) onAdminStats(msg *nats.Msg) {
	data, _ := json.Marshal(n.localStats())
	_ = msg.Respond(data)
}

// httpRoostStats answers GET /v1/roost/stats: every member of this node's
// view, with the figures of the live ones, asked in parallel.
func (n *Node) httpRoostStats(w http.ResponseWriter, _ *http.Request) {
	view := n.members.View()
	reply := StatsReply{Node: n.cfg.Name, View: view.Version, Time: time.Now(), Nodes: make([]NodeStats, len(view.Members))}
	var wg sync.WaitGroup
	for i, m := range view.Members {
		base := NodeStats{Name: m.Name, ID: m.ID, Status: m.Status, Role: m.Role, HTTP: m.HTTP}
		switch {
		case m.Self:
			reply.Nodes[i] = n.localStats()
			reply.Nodes[i].Status = m.Status
		case m.Status != membership.Alive && m.Status != membership.Suspect:
			base.Error = "not live"
			reply.Nodes[i] = base
		default:
			wg.Go(func() {
				reply.Nodes[i] = n.remoteStats(base)
			})
		}
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, reply)
}

// remoteStats asks the member of base for its figures.
func (n *Node) remoteStats(base NodeStats) NodeStats {
	msg, err := n.bus.Conn().Request(n.subj.NodeAdmin(base.ID, adminStats), nil, statsTimeout)
	if err != nil {
		base.Error = err.Error()
		return base
	}
	var s NodeStats
	if err := json.Unmarshal(msg.Data, &s); err != nil {
		base.Error = "malformed answer: " + err.Error()
		return base
	}
	s.Status = base.Status // as this node sees it
	return s
}
