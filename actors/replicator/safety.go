package replicator

import "time"

// Safety is how well the cluster's copies stand, as this node sees it from
// the heartbeats: the gate for rolling restarts (GET /v1/roost/ready?safe).
type Safety struct {
	Partitions      int   `json:"partitions"`
	Want            int   `json:"want"`               // in-sync copies each partition needs: R, capped at the live servers
	UnderReplicated int   `json:"under_replicated"`   // partitions with fewer in-sync copies on live owners
	Examples        []int `json:"examples,omitempty"` // the first few of them
}

// Safe reports whether every partition has its in-sync copies.
func (s Safety) Safe() bool { return s.UnderReplicated == 0 && s.Partitions > 0 }

// Safety counts the partitions whose owners in this node's table are not
// all in sync: the primary ready under a term, each other owner a replica
// synced under that term, as their heartbeats of the last two beat periods
// (or this node's own state) say; a silent owner is not in sync. Without a
// table every partition counts as under-replicated.
func (r *Replicator) Safety() Safety {
	r.mu.Lock()
	t := r.table
	r.mu.Unlock()
	s := Safety{Partitions: len(r.parts), Want: r.cfg.Replicas}
	if t == nil {
		s.UnderReplicated = len(r.parts)
		return s
	}
	s.Want = min(r.cfg.Replicas, len(t.Members()))
	byPart, _ := r.peerClaims()
	fresh := time.Now().Add(-2 * r.cfg.Heartbeat).UnixNano()
	for p, cl := range byPart {
		for name, c := range cl {
			if c.Seen < fresh {
				delete(byPart[p], name)
			}
		}
	}
	for p, pt := range r.parts {
		pt.mu.Lock()
		own := pt.c.claim()
		pt.mu.Unlock()
		if inSync(t.Owners(p), r.cfg.Name, own, byPart[p]) < s.Want {
			s.UnderReplicated++
			if len(s.Examples) < 10 {
				s.Examples = append(s.Examples, p)
			}
		}
	}
	return s
}

// inSync counts the owners of a partition that hold it in sync: the primary
// (first owner) ready, and the replicas synced under its term. self's claim
// is own; the others' are in claims.
func inSync(owners []string, self string, own Claim, claims map[string]Claim) int {
	claimOf := func(name string) (Claim, bool) {
		if name == self {
			return own, true
		}
		c, ok := claims[name]
		return c, ok
	}
	if len(owners) == 0 {
		return 0
	}
	pc, ok := claimOf(owners[0])
	if !ok || pc.Role != RolePrimary || !pc.Ready {
		return 0
	}
	n := 1
	for _, name := range owners[1:] {
		if c, ok := claimOf(name); ok && c.Role == RoleReplica && c.Ready && c.Term == pc.Term {
			n++
		}
	}
	return n
}
