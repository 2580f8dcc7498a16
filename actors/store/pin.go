package store

import "strings"

// Pinned entries (Config.Pinned): the entries whose key begins with the
// pinned prefix are kept out of S3-FIFO's small and main queues, in a FIFO
// of their own that eviction never looks at. They still count against the
// shard's budget: they are evicted around, and a shard whose only entries
// are pinned may exceed its share of MaxMemory by them. A node pins its own
// small state this way (the service catalog under its reserved prefix), so
// that a cache full of user data never evicts it.

// pins reports whether entry e is pinned.
func (p *s3fifo) pins(sl *slab, e *entry) bool {
	return p.pin != "" && strings.HasPrefix(sl.key(e), p.pin)
}
