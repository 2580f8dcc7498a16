package replicator

// PartitionStatus is one partition's replication state on this node, as
// `roost status --json` shows it.
type PartitionStatus struct {
	Partition int      `json:"partition"`
	Role      string   `json:"role"`               // primary, replica or none
	Ready     bool     `json:"ready"`              // primary: takes requests; replica: synced
	Term      uint64   `json:"term"`               // the primary term followed
	Last      ID       `json:"last"`               // last entry ID assigned (primary) or applied in order (replica)
	Lag       uint64   `json:"lag"`                // replica: entries behind the primary's last announced head
	Primary   string   `json:"primary,omitempty"`  // replica: the primary followed
	Replicas  []string `json:"replicas,omitempty"` // primary: the other owners
	Digest    Digest   `json:"digest"`             // of this node's copy: equal digests, equal copies
}

// Status returns the state of every partition this node holds.
func (r *Replicator) Status() []PartitionStatus {
	var out []PartitionStatus
	defer func() {
		want := map[int]bool{}
		for _, ps := range out {
			want[ps.Partition] = true
		}
		d := r.digests(want)
		for i := range out {
			out[i].Digest = d[out[i].Partition]
		}
	}()
	for _, pt := range r.parts {
		pt.mu.Lock()
		if pt.role != roleNone {
			ps := PartitionStatus{Partition: pt.p, Role: pt.role.String(), Ready: pt.ready, Term: pt.term,
				Last: ID{pt.term, pt.seq}, Primary: pt.primary}
			if pt.role == rolePrimary {
				ps.Primary, ps.Replicas = "", append([]string(nil), pt.replicas...)
			} else if pt.head.Term == pt.term && pt.head.Seq > pt.seq {
				ps.Lag = pt.head.Seq - pt.seq
			}
			out = append(out, ps)
		}
		pt.mu.Unlock()
	}
	return out
}
