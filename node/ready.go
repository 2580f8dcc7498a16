package node

import (
	"net/http"

	"github.com/roostkv/roost/actors/replicator"
)

// ReadyReply answers GET /v1/roost/ready.
type ReadyReply struct {
	Node   string             `json:"node"`
	Ready  bool               `json:"ready"`            // the node serves: it has a table and is not stopping
	Safe   bool               `json:"safe"`             // every partition has its in-sync copies on live owners
	Safety *replicator.Safety `json:"safety,omitempty"` // the counts behind Safe
}

// httpRoostReady answers 200 when the node serves; with ?safe, only when
// every partition has R in-sync copies on live owners (R capped at the live
// servers), and 503 with the count of under-replicated partitions
// otherwise: the gate for rolling restarts.
func (n *Node) httpRoostReady(w http.ResponseWriter, r *http.Request) {
	reply := ReadyReply{Node: n.cfg.Name, Ready: n.routing.Load() != nil && !n.leaving.Load()}
	if n.repl != nil {
		s := n.repl.Safety()
		reply.Safety, reply.Safe = &s, s.Safe() && reply.Ready
	} else {
		reply.Safe = reply.Ready // a proxy holds no copies
	}
	code := http.StatusOK
	if _, safe := r.URL.Query()["safe"]; !reply.Ready || safe && !reply.Safe {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, reply)
}
