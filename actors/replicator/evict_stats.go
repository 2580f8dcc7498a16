package replicator

import "sync/atomic"

// EvictionStats counts the evictions this node's copies took part in,
// apart from its store's own (store.Stats.Evictions counts every entry
// evicted, these included): how often the copies of a key had to be told
// to follow an eviction, and how often a replica could not spare a copy.
type EvictionStats struct {
	// Sent is the keys this node, as a partition's primary, sent a replica
	// to evict (one per key and replica): its own evictions, replicas'
	// forced ones, and records pushed back that its ghost refused.
	Sent uint64
	// Forced is the keys this node's store evicted from copies it holds for
	// another primary, which it spares while anything else may go (at most
	// 64 in a row): each was reported to its primary, which evicts it from
	// every copy. Steadily rising: the node's --max-memory is too small for
	// the copies it is given.
	Forced uint64
	// Followed is the entries removed from this node's store because an
	// eviction decided for another copy reached it (a primary's Evict on a
	// replica; a replica's forced report on its primary).
	Followed uint64
}

// evictCounts are the shell's counters behind EvictionStats.
type evictCounts struct {
	sent, forced atomic.Uint64
}

// count counts an Evict the shell sent to one peer.
func (e *evictCounts) count(m Evict) {
	if m.forced {
		e.forced.Add(uint64(len(m.Keys)))
		return
	}
	e.sent.Add(uint64(len(m.Keys)))
}

// EvictionStats returns the counts since the node started.
func (r *Replicator) EvictionStats() EvictionStats {
	return EvictionStats{Sent: r.evicts.sent.Load(), Forced: r.evicts.forced.Load(), Followed: r.data.followed.Load()}
}
