package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/partition"
)

// routing is what the API front routes by: one membership view and the
// partition table computed from it. The router loop builds a new one on every
// view change and publishes it atomically; handlers only read it.
type routing struct {
	view  membership.View
	table *partition.Table
	ids   map[string]string // live member name -> node ID
	self  string            // this node's name
}

// primary reports whether this node is the primary of partition p.
func (r *routing) primary(p int) bool { return r.table.Primary(p) == r.self }

// newRouting computes the table of view: partitions over the live servers,
// spread over the values of placementTag when it is set (a server without
// the tag is in zone "").
func newRouting(view membership.View, self string, partitions, replicas int, placementTag string) *routing {
	servers := view.Live(RoleServer)
	names := make([]string, 0, len(servers))
	ids := make(map[string]string, len(servers))
	for _, m := range view.Live("") {
		ids[m.Name] = m.ID
	}
	var zones map[string]string // nil = no zone-aware placement
	if placementTag != "" {
		zones = make(map[string]string, len(servers))
	}
	for _, m := range servers {
		names = append(names, m.Name)
		if zones != nil {
			zones[m.Name] = m.Tags[placementTag]
		}
	}
	t := partition.ComputeZoned(names, zones, partitions, replicas)
	return &routing{view: view, table: t, ids: ids, self: self}
}

// runRouter applies each view the membership actor delivers, until the
// channel closes. It owns the partition subscriptions.
func (n *Node) runRouter(views <-chan membership.View) {
	defer close(n.routerDone)
	defer func() {
		for _, s := range n.partSubs {
			_ = s.Unsubscribe()
		}
	}()
	for v := range views { // a new membership view
		n.applyView(v)
	}
}

// applyView publishes the routing of view v to the replicator and the API
// front, and subscribes to the partition subjects of the partitions this
// node now leads. The replicator pulls in, syncs, hands over and drops the
// partitions' data.
func (n *Node) applyView(v membership.View) {
	subs := n.partSubs
	old := n.routing.Load()
	r := newRouting(v, n.cfg.Name, n.cfg.Partitions, n.cfg.Replicas, n.cfg.PlacementTag)
	if n.repl != nil {
		// First the replicator: a partition this node starts to lead is not
		// served before it is pulled in (locate asks the replicator).
		n.repl.SetTable(r.table, r.ids)
	}
	n.routing.Store(r)
	n.mapText(v)

	for p := range n.cfg.Partitions {
		lead := r.primary(p)
		if s, had := subs[p]; had && !lead {
			_ = s.Unsubscribe()
			delete(subs, p)
		} else if !had && lead {
			s, err := n.bus.Conn().QueueSubscribe(n.subj.PartitionBatch(p), "p", n.handlePartitionBatch)
			if err != nil {
				n.log.Error("cannot serve partition", "partition", p, "err", err)
				continue
			}
			subs[p] = s
		}
	}
	_ = n.bus.Conn().Flush()
	n.wakeTextRouter()
	if old == nil || !slices.Equal(old.table.Members(), r.table.Members()) {
		primary, replica := r.table.Owned(n.cfg.Name)
		n.log.Info("partition table", "view", v.Version, "servers", r.table.Members(), "primary_of", len(primary), "replica_of", len(replica))
	}
	n.logPlacement(old, r)
}

// awaitPeers gives a node that joins a cluster a moment to hear its peers'
// heartbeats before it takes partitions, so that its first table is the
// cluster's and not one over part of it (its routes to the peers, and so
// their beats, come one after another). It returns once it has heard a peer
// and then no new member for two heartbeat periods, in which every live
// peer beats, or after wait.
func (n *Node) awaitPeers(ctx context.Context, wait time.Duration) {
	ch, cancel := n.members.Subscribe()
	defer cancel()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var quiet <-chan time.Time // runs from the last new member, once a peer is heard
	heard := 0
	for {
		if live := len(n.members.View().Live("")); live > 1 && live != heard {
			heard = live
			quiet = time.After(2 * n.cfg.HeartbeatInterval)
		}
		select {
		case <-ch: // a view change: look again
		case <-quiet:
			return
		case <-timer.C:
			if heard < 2 {
				n.log.Warn("no peer heard yet; serving alone until one appears", "waited", wait)
			}
			return
		case <-ctx.Done():
			return
		}
	}
}

// errNoPrimary is the 503 of an operation whose partition has no primary
// that answers right now (a view change in progress).
func errNoPrimary(p int) error {
	return &apiError{code: 503, msg: fmt.Sprintf("partition %d has no primary right now; retry shortly", p)}
}
