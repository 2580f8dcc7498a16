package node

import (
	"encoding/json"

	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/actors/membership"
)

// MembersReply is the answer of the members subject: the answering node's
// view, and the peers it refuses (another partition count).
type MembersReply struct {
	Node    string              `json:"node"`    // the answering node's name
	Version uint64              `json:"version"` // the view's version
	Members []MemberInfo        `json:"members"`
	Refused []membership.Member `json:"refused,omitempty"`
}

// MemberInfo is a member as `roost members` shows it: its heartbeat facts
// and the partitions it holds in the answering node's table.
type MemberInfo struct {
	membership.Member
	PartitionCount int             `json:"partition_count"` // P the member runs with
	Partitions     PartitionCounts `json:"partitions"`
}

// PartitionCounts are how many partitions a member leads and copies.
type PartitionCounts struct {
	Primary int `json:"primary"`
	Replica int `json:"replica"`
}

// TableReply is the answer of the table subject: the partition table the
// answering node routes by, and the IDs that address each live member, for
// smart clients (docs/PROTOCOL.md).
type TableReply struct {
	Node       string            `json:"node"`
	View       uint64            `json:"view"`       // the membership view the table was computed from
	Partitions int               `json:"partitions"` // P
	Replicas   int               `json:"replicas"`   // R as configured (capped at the servers)
	Owners     [][]string        `json:"owners"`     // per partition, names, primary first
	IDs        map[string]string `json:"ids"`        // live member name -> node ID

	Placement *PlacementStatus `json:"placement,omitempty"` // zones and unspread partitions, with --placement-tag (placement.go)
}

// Members returns this node's membership view.
func (n *Node) Members() MembersReply {
	r := n.routing.Load()
	v := n.members.View() // the latest, with fresh last-seen times
	infos := make([]MemberInfo, len(v.Members))
	for i, m := range v.Members {
		primary, replica := r.table.Owned(m.Name)
		infos[i] = MemberInfo{Member: m, PartitionCount: m.Partitions, Partitions: PartitionCounts{len(primary), len(replica)}}
	}
	return MembersReply{Node: n.cfg.Name, Version: v.Version, Members: infos, Refused: n.members.Refused()}
}

// Table returns the partition table this node routes by.
func (n *Node) Table() TableReply {
	r := n.routing.Load()
	owners := make([][]string, n.cfg.Partitions)
	for p := range owners {
		owners[p] = r.table.Owners(p)
	}
	return TableReply{Node: n.cfg.Name, View: r.view.Version, Partitions: n.cfg.Partitions, Replicas: n.cfg.Replicas, Owners: owners, IDs: r.ids,
		Placement: n.placementStatus(r.table)}
}

func (n *Node) handleMembers(req micro.Request) { respondJSON(req, n.Members()) }

func (n *Node) handleTable(req micro.Request) { respondJSON(req, n.Table()) }

func respondJSON(req micro.Request, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		respondError(req, err)
		return
	}
	_ = req.Respond(data)
}
