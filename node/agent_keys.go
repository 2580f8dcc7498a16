package node

import (
	"sync"
	"time"

	"github.com/roostkv/roost/partition"
)

// Distinct keys against stored copies. A node's store holds the keys of the
// partitions it leads and copies of those it is a replica of (and, for a
// while, of partitions it no longer owns, until their new owners have
// them), so its key count is copies: with R replicas a cluster's stores
// together hold about R times its keys. Counting the live keys of the
// partitions a node leads gives figures whose sum over the nodes is the
// cluster's distinct keys; /v1/roost/stats, /metrics, /v1/status and the
// dashboard show both.

// keyCountTTL is how long a count is reused: counting walks the whole
// store, so the dashboard's polls and Prometheus scrapes share one walk per
// period instead of making one each.
const keyCountTTL = time.Second

// KeyCounts are the live, unexpired keys of a node's store (store.Stats.Keys
// also counts expired ones not yet swept), split by the node's role for
// their partition in its table.
type KeyCounts struct {
	Primary int64 `json:"primary"` // in partitions this node leads; the sum over the nodes is the cluster's distinct keys
	Replica int64 `json:"replica"` // copies of keys other nodes lead
}

// keyCounter caches the last count; safe for concurrent use.
type keyCounter struct {
	mu     sync.Mutex
	at     time.Time // when counts was taken
	view   uint64    // the membership view whose table it was counted by
	counts KeyCounts
}

// keyCounts returns this node's key counts, at most keyCountTTL old and by
// its current table.
func (n *Node) keyCounts() KeyCounts {
	r := n.routing.Load()
	if r == nil || n.store == nil {
		return KeyCounts{}
	}
	c := &n.metrics.keys
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < keyCountTTL && c.view == r.view.Version {
		return c.counts
	}
	leads := make([]bool, n.cfg.Partitions)
	primary, _ := r.table.Owned(n.cfg.Name)
	for _, p := range primary {
		leads[p] = true
	}
	var kc KeyCounts
	n.store.Versions(func(key string, _ uint64, deleted bool) {
		switch {
		case deleted, reserved(key): // Roost's own keys (the catalog's) are not the user's
		case leads[partition.Of(key, n.cfg.Partitions)]:
			kc.Primary++
		default:
			kc.Replica++
		}
	})
	c.at, c.view, c.counts = time.Now(), r.view.Version, kc
	return kc
}
