package node

import (
	"net/http"
	"slices"

	"github.com/roostkv/roost/partition"
)

// Zone-aware placement (--placement-tag, docs/cluster.md): the partition
// table spreads each partition's owners over distinct values of the tag
// (partition.ComputeZoned); this file reports how far it could.

// PlacementStatus is the placement part of the cluster status and of the
// table reply: which tag spreads the owners, the zones of the live servers,
// and the partitions that could not be spread over Replicas zones.
type PlacementStatus struct {
	Tag      string              `json:"tag"`      // --placement-tag
	Zones    map[string][]string `json:"zones"`    // zone -> live servers in it, sorted; "" = servers without the tag
	Spread   bool                `json:"spread"`   // every partition's owners are in distinct zones
	Unspread []int               `json:"unspread"` // partitions whose owners share a zone: fewer live zones than owners per partition
}

// httpRoostPartitions answers GET /v1/roost/partitions: the partition table
// this node routes by (the admin "table" subject's TableReply), with the
// placement when --placement-tag is set.
func (n *Node) httpRoostPartitions(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.Table())
}

// placementStatus reports the placement of t; nil without --placement-tag.
func (n *Node) placementStatus(t *partition.Table) *PlacementStatus {
	if n.cfg.PlacementTag == "" || t == nil || !t.Zoned() {
		return nil
	}
	ps := &PlacementStatus{Tag: n.cfg.PlacementTag, Zones: map[string][]string{}, Unspread: slices.Clone(t.Unspread())}
	for _, m := range t.Members() {
		z, _ := t.Zone(m)
		ps.Zones[z] = append(ps.Zones[z], m)
	}
	ps.Spread = len(ps.Unspread) == 0
	return ps
}

// logPlacement says, on a change, whether the new table could spread every
// partition: a warning while it cannot (losing a zone may then lose data).
func (n *Node) logPlacement(old, r *routing) {
	if n.cfg.PlacementTag == "" {
		return
	}
	now := len(r.table.Unspread())
	before := -1
	if old != nil {
		before = len(old.table.Unspread())
	}
	switch {
	case now == before:
	case now > 0:
		n.log.Warn("partitions not spread over zones: fewer live zones than owners per partition; losing one zone may lose their data",
			"placement_tag", n.cfg.PlacementTag, "zones", r.table.Zones(), "replicas", r.table.Replicas(), "unspread", now)
	case before > 0:
		n.log.Info("every partition spread over distinct zones again", "placement_tag", n.cfg.PlacementTag, "zones", r.table.Zones())
	}
}
