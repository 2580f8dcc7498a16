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
	Datacenter    string            `json:"datacenter"` // --datacenter, as consul reports it
	Tags          map[string]string `json:"tags,omitempty"`
	NATS          string            `json:"nats"`           // client URL of the bus
	HTTP          string            `json:"http,omitempty"` // HTTP API address; empty when off
	Prefix        string            `json:"prefix"`
	Partitions    int               `json:"partitions"`
	Replicas      int               `json:"replicas"`
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
	PrimaryOf   []int          `json:"primary_of"`             // partitions this node leads
	ReplicaOf   []int          `json:"replica_of"`             // partitions this node holds a copy of
	Refused     []string       `json:"refused,omitempty"`      // peers refused for another partition count

	// Replication is the state of every partition this node holds: role,
	// term, last entry ID, lag behind the primary and a digest of its copy
	// (docs/replication.md).
	Replication []replicator.PartitionStatus `json:"replication,omitempty"`
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
		Tags:          n.cfg.Tags,
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
	}
	for _, m := range r.view.Members {
		cs.Members[string(m.Status)]++
	}
	cs.PrimaryOf, cs.ReplicaOf = r.table.Owned(n.cfg.Name)
	for _, m := range n.members.Refused() {
		cs.Refused = append(cs.Refused, m.Name)
	}
	if n.repl != nil {
		cs.Replication = n.repl.Status()
	}
	return cs
}
