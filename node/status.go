package node

import (
	"encoding/json"
	"runtime"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/actors/store"
)

// Status is what `roost status` shows: who the node is, how it is set up,
// and its store and runtime figures. Its JSON shape is part of the API.
type Status struct {
	Name          string            `json:"name"`
	ID            string            `json:"id"`
	Version       string            `json:"version"`
	Role          string            `json:"role"`
	Datacenter    string            `json:"datacenter"`     // --datacenter, as consul reports it
	Tags          map[string]string `json:"tags,omitempty"` // as the node beats them now: --tags, or what a re-tag set
	NATS          string            `json:"nats"`           // client URL of the bus
	HTTP          string            `json:"http,omitempty"` // HTTP API address; empty when off
	Prefix        string            `json:"prefix"`
	Partitions    int               `json:"partitions"`
	Replicas      int               `json:"replicas"`  // --replicas; Cluster.Replicas is what the table has
	MaxKey        int               `json:"max_key"`   // bytes
	MaxValue      int64             `json:"max_value"` // bytes
	UptimeSeconds float64           `json:"uptime_seconds"`
	Store         store.Stats       `json:"store"`
	Cluster       ClusterStatus     `json:"cluster"`
	Runtime       RuntimeStats      `json:"runtime"`
}

// ClusterStatus is the node's place in the cluster: the view it acts on and
// the partitions it holds.
type ClusterStatus struct {
	ClusterAddr string         `json:"cluster_addr,omitempty"` // route address of the embedded server
	Routes      int            `json:"routes"`                 // route connections to other servers
	View        uint64         `json:"view"`                   // version of the membership view acted on
	Members     map[string]int `json:"members"`                // members by status
	Servers     []string       `json:"servers"`                // live data-holding members the table is computed over
	Replicas    int            `json:"replicas"`               // owners per partition in the table: --replicas capped at the servers
	Keys        KeyCounts      `json:"keys"`                   // live keys in its store by its role for their partition (agent_keys.go)
	PrimaryOf   []int          `json:"primary_of"`             // partitions this node leads
	ReplicaOf   []int          `json:"replica_of"`             // partitions this node holds a copy of
	Refused     []string       `json:"refused,omitempty"`      // peers refused for another partition count or placement tag

	// Placement is how the owners are spread over --placement-tag's zones
	// (placement.go); absent without the flag.
	Placement *PlacementStatus `json:"placement,omitempty"`

	// Replication is the state of every partition this node holds: role,
	// term, last entry ID, lag behind the primary and a digest of its copy
	// (docs/replication.md).
	Replication []replicator.PartitionStatus `json:"replication,omitempty"`

	// Safety counts the partitions whose owners are not all in sync, as
	// the heartbeats say: the gate for rolling restarts
	// (GET /v1/roost/ready?safe, roost status --wait-safe).
	Safety *replicator.Safety `json:"safety,omitempty"`
}

// RuntimeStats are the Go runtime's memory figures of the node's process.
type RuntimeStats struct {
	HeapAlloc  uint64 `json:"heap_alloc"` // bytes of allocated heap objects
	HeapInuse  uint64 `json:"heap_inuse"` // bytes in in-use spans
	Sys        uint64 `json:"sys"`        // bytes obtained from the OS
	NumGC      uint32 `json:"num_gc"`     // completed GC cycles
	Goroutines int    `json:"goroutines"` // live goroutines
	GOMAXPROCS int    `json:"gomaxprocs"` // cores Go schedules on
}

// Status returns the node's status now.
func (n *Node) Status() Status {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return Status{
		Name:          n.cfg.Name,
		ID:            n.id,
		Version:       Version,
		Role:          n.cfg.Role,
		Datacenter:    n.cfg.datacenter(),
		Tags:          n.currentTags(),
		NATS:          n.bus.ClientURL(),
		HTTP:          n.httpAddr,
		Prefix:        n.subj.Prefix(),
		Partitions:    n.cfg.Partitions,
		Replicas:      n.cfg.Replicas,
		MaxKey:        n.cfg.MaxKey,
		MaxValue:      n.cfg.MaxValue,
		UptimeSeconds: time.Since(n.started).Seconds(),
		Store:         n.store.Stats(),
		Cluster:       n.clusterStatus(),
		Runtime: RuntimeStats{
			HeapAlloc:  ms.HeapAlloc,
			HeapInuse:  ms.HeapInuse,
			Sys:        ms.Sys,
			NumGC:      ms.NumGC,
			Goroutines: runtime.NumGoroutine(),
			GOMAXPROCS: runtime.GOMAXPROCS(0),
		},
	}
}

func (n *Node) handleStatus(req micro.Request) {
	data, err := json.Marshal(n.Status())
	if err != nil {
		respondError(req, err)
		return
	}
	_ = req.Respond(data)
}

// currentTags are the node's tags as its membership entry has them: a
// re-tag (PUT /v1/roost/members/<node>/tags) changes them, not the config.
func (n *Node) currentTags() map[string]string {
	if n.members != nil {
		if me, ok := n.members.View().Find(n.cfg.Name); ok {
			return me.Tags
		}
	}
	return n.cfg.Tags
}

func (n *Node) clusterStatus() ClusterStatus {
	r := n.routing.Load()
	if r == nil {
		return ClusterStatus{}
	}
	cs := ClusterStatus{
		ClusterAddr: n.bus.ClusterAddr(),
		Routes:      n.bus.Routes(),
		View:        r.view.Version,
		Members:     map[string]int{},
		Servers:     r.table.Members(),
		Replicas:    r.table.Replicas(),
		Keys:        n.keyCounts(),
	}
	for _, m := range r.view.Members {
		cs.Members[string(m.Status)]++
	}
	cs.PrimaryOf, cs.ReplicaOf = r.table.Owned(n.cfg.Name)
	cs.Placement = n.placementStatus(r.table)
	for _, m := range n.members.Refused() {
		cs.Refused = append(cs.Refused, m.Name)
	}
	if n.repl != nil {
		cs.Replication = n.repl.Status()
		s := n.repl.Safety()
		cs.Safety = &s
	}
	return cs
}
