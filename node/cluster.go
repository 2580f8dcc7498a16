package node

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/node/partition"
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

// newRouting computes the table of view: partitions over the live servers.
func newRouting(view membership.View, self string, partitions, replicas int) *routing {
	servers := view.Live(RoleServer)
	names := make([]string, 0, len(servers))
	ids := make(map[string]string, len(servers))
	for _, m := range view.Live("") {
		ids[m.Name] = m.ID
	}
	for _, m := range servers {
		names = append(names, m.Name)
	}
	t := partition.Compute(names, partitions, replicas)
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

// applyView publishes the routing of view v, takes up the partitions this
// node now leads, lets go of the others, and drops their data: until
// replication lands a partition's data lives on its primary only, and a node
// that led a partition before must not answer stale values if it leads it
// again.
func (n *Node) applyView(v membership.View) {
	subs := n.partSubs
	old := n.routing.Load()
	r := newRouting(v, n.cfg.Name, n.cfg.Partitions, n.cfg.Replicas)
	n.routing.Store(r)

	lost := 0
	for p := range n.cfg.Partitions {
		lead := r.primary(p)
		if s, had := subs[p]; had && !lead {
			_ = s.Unsubscribe()
			delete(subs, p)
			lost++
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
	if lost > 0 {
		dropped := n.store.Drop(func(key string) bool {
			return !r.primary(partition.Of(key, n.cfg.Partitions))
		})
		n.log.Info("partitions moved away", "partitions", lost, "keys_dropped", dropped)
	}
	if old == nil || !slices.Equal(old.table.Members(), r.table.Members()) {
		primary, replica := r.table.Owned(n.cfg.Name)
		n.log.Info("partition table", "view", v.Version, "servers", r.table.Members(), "primary_of", len(primary), "replica_of", len(replica))
	}
}

// awaitPeers gives a node that joins a cluster a moment to hear its peers'
// heartbeats before it serves, so that it does not take writes for
// partitions whose primary it has not heard of yet. It returns once the view
// holds another member, or after wait.
func (n *Node) awaitPeers(ctx context.Context, wait time.Duration) {
	ch, cancel := n.members.Subscribe()
	defer cancel()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		if len(n.members.View().Live("")) > 1 {
			return
		}
		select {
		case <-ch: // a view change: look again
		case <-timer.C:
			n.log.Warn("no peer heard yet; serving alone until one appears", "waited", wait)
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
