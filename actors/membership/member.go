package membership

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Status is what a member's heartbeats (or their absence) say about it.
type Status string

// Statuses of a member.
const (
	Alive   Status = "alive"   // beating
	Suspect Status = "suspect" // silent for SuspectAfter beat periods; still routed to
	Dead    Status = "dead"    // silent for DeadAfter beat periods
	Left    Status = "left"    // announced its leave, or was forced out
	// Refused marks the peers of Membership.Refused: they run another
	// partition count. It never appears in a View.
	Refused Status = "refused"
)

// Roles of a member.
const (
	RoleServer = "server" // holds partitions
	RoleProxy  = "proxy"  // joins and routes, holds no data
)

// Member is one process in the cluster as this node sees it.
type Member struct {
	ID          string            `json:"id"`          // unique per process start
	Name        string            `json:"name"`        // stable across restarts
	Incarnation uint64            `json:"incarnation"` // rises on each restart of the same name (start time in Unix ms)
	Role        string            `json:"role"`        // RoleServer or RoleProxy
	Tags        map[string]string `json:"tags"`        // free-form labels
	Addr        string            `json:"addr"`        // NATS client URL
	HTTP        string            `json:"http"`        // HTTP API address or ""
	Partitions  int               `json:"partitions"`  // partition count P it was started with
	Placement   string            `json:"placement"`   // the placement tag (--placement-tag) it was started with; "" = none
	Datacenter  string            `json:"datacenter"`  // its --datacenter, fixed for a process; "" = unknown (an older node)
	Build       string            `json:"build"`       // its Roost version, fixed for a process; "" = unknown
	Routes      bool              `json:"routes"`      // it holds the routed text subjects of the partitions it leads (docs/PROTOCOL.md, "Routing"); false from older nodes
	Status      Status            `json:"status"`
	LastSeen    time.Time         `json:"last_seen"` // local time its last beat arrived (for self: our last beat)
	Since       time.Time         `json:"since"`     // local time Status last changed
	Self        bool              `json:"self"`      // this process
	Extra       []byte            `json:"-"`         // opaque payload of its last beat (Heartbeat.Extra)
}

// live reports whether a member counts for routing: alive or suspect.
func (m Member) live() bool { return m.Status == Alive || m.Status == Suspect }

// clone returns a copy of m that shares no map with it.
func (m Member) clone() Member {
	m.Tags = maps.Clone(m.Tags)
	return m
}

// View is a snapshot of the membership. Views are shared between readers:
// treat them as read-only.
type View struct {
	// Version rises with every change of the membership, a status, a role,
	// tags or addresses. LastSeen and Extra refresh without a new version.
	Version uint64
	Members []Member // sorted by Name; includes self
}

// Live returns the alive and suspect members with role ("" = any role),
// sorted by name.
func (v View) Live(role string) []Member {
	var out []Member
	for _, m := range v.Members {
		if m.live() && (role == "" || m.Role == role) {
			out = append(out, m)
		}
	}
	return out
}

// Find returns the member called name.
func (v View) Find(name string) (Member, bool) {
	i, ok := slices.BinarySearchFunc(v.Members, name, func(m Member, name string) int {
		return strings.Compare(m.Name, name)
	})
	if !ok {
		return Member{}, false
	}
	return v.Members[i], true
}

// Self returns this process's own member.
func (v View) Self() (Member, bool) {
	for _, m := range v.Members {
		if m.Self {
			return m, true
		}
	}
	return Member{}, false
}
