package replicator

import (
	"slices"
	"sync"
	"time"
)

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
	Holds     bool     `json:"holds"`              // the store holds a copy (role none: one not handed off yet)
	Digest    Digest   `json:"digest"`             // of this node's copy: equal digests, equal copies
}

// Status returns the state of every partition this node holds.
func (r *Replicator) Status() []PartitionStatus {
	var out []PartitionStatus
	for _, pt := range r.parts {
		pt.mu.Lock()
		c := pt.c
		if c.role != RoleNone || c.holds {
			ps := PartitionStatus{Partition: pt.p, Role: c.role.String(), Ready: c.ready, Term: c.term,
				Last: ID{c.term, c.seq}, Holds: c.holds}
			switch c.role {
			case RolePrimary:
				ps.Replicas = slices.Clone(c.replicas())
			case RoleReplica:
				ps.Primary = c.primary
				if pc, ok := c.claims[c.primary]; ok && pc.Term == c.term && pc.Seq > c.seq {
					ps.Lag = pc.Seq - c.seq
				}
			}
			out = append(out, ps)
		}
		pt.mu.Unlock()
	}
	d := r.statusDigests()
	for i := range out {
		out[i].Digest = d[out[i].Partition]
	}
	return out
}

// statusDigests returns the digest of every partition, reusing those of the
// previous call while no write reached any partition since and they are
// under a second old: status is polled (the dashboard), and a digest is a
// pass over the whole store.
func (r *Replicator) statusDigests() map[int]Digest {
	stamp := uint64(0)
	for i := range r.data.mutations {
		stamp += r.data.mutations[i].Load()
	}
	c := &r.statusCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.digests == nil || c.stamp != stamp || time.Since(c.at) > time.Second {
		all := make(map[int]bool, len(r.parts))
		for p := range r.parts {
			all[p] = true
		}
		c.digests, c.stamp, c.at = r.digests(all), stamp, time.Now()
	}
	return c.digests
}

// digestCache is what statusDigests keeps between calls.
type digestCache struct {
	mu      sync.Mutex
	digests map[int]Digest
	stamp   uint64 // sum of the partitions' mutation counts when computed
	at      time.Time
}
