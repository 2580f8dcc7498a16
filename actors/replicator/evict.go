package replicator

import (
	"slices"

	"github.com/roostkv/roost/actors/store"
)

// Eviction and the copies of a partition (docs/replication.md, "Eviction
// and copies"). The primary of a partition decides what of it is evicted,
// for every copy, as Redis's master does for its replicas: the store spares
// the copies this node holds for another primary (store.EvictHooks.Spare),
// and tells the shell of every entry it evicts; the shell steps Evicted in
// the key's partition. The primary then sends its replicas an Evict: the
// keys, each at the version evicted, and its log head (term, seq) then. A
// replica applies it once it applied the log up to that head, so that the
// writes logged before the eviction are in its copy first; and only to
// entries at that version or older (store.Evict), so that a write newer
// than the eviction is never undone by it. The copies then agree, and
// anti-entropy, which compares their digests, has nothing to bring back.
//
// A replica whose store had to evict a spared copy anyway (nothing else
// left in the shard) tells its primary the same way, and the primary
// evicts those keys for every copy: a key goes from all copies or from
// none. An Evict lost, or an eviction while a copy is being pulled or
// synced, leaves the copies differing until anti-entropy finds them: the
// replica pushes its copy, and the primary refuses the records its ghost
// of recent evictions covers and has the replica evict them. Past the
// ghost's memory an evicted key may come back once, at the version
// evicted.

// Evicted says the store evicted these entries of the partition.
type Evicted struct{ Keys []Evictee }

// Evictee is one entry evicted: its key and the version it had.
type Evictee struct {
	Key     string `msgpack:"k"`
	Version uint64 `msgpack:"v"`
}

// Evict carries evictions between the owners of partition P. From the
// primary: its replicas evict Keys (each at its version or older) once they
// applied its log up to (Term, Seq). From a replica of Term: it had to
// evict them, and the primary evicts them for every copy.
type Evict struct {
	P    int       `msgpack:"p"`
	From string    `msgpack:"from"`
	Term uint64    `msgpack:"t"`
	Seq  uint64    `msgpack:"s"`
	Keys []Evictee `msgpack:"keys"`

	// forced marks, on the node that sends it, a replica's report of
	// copies its store had to evict (counted apart: EvictionStats).
	forced bool `msgpack:"-"`
}

func (Evicted) isMessage() {}
func (Evict) isMessage()   {}

// evictedMax bounds the evictions a core remembers (ghost); past it the
// oldest are forgotten.
const evictedMax = 256

// ghost remembers the latest evictions of a partition's keys: a copy that
// missed them (a holder back with its data dir, a replica whose Evict was
// lost) offers the evicted keys back at the versions evicted or older, and
// those are refused, so that an eviction never lets an older version of
// the key come back in its place.
type ghost struct {
	versions map[string]uint64
	order    []string // the keys remembered, a ring of evictedMax once full
	next     int      // the oldest key in order, once full: the next to go
}

func (g *ghost) add(key string, version uint64) {
	if g.versions == nil {
		g.versions = map[string]uint64{}
	}
	if v, ok := g.versions[key]; ok {
		g.versions[key] = max(v, version)
		return
	}
	g.versions[key] = version
	if len(g.order) < evictedMax {
		g.order = append(g.order, key)
		return
	}
	delete(g.versions, g.order[g.next])
	g.order[g.next] = key
	g.next = (g.next + 1) % evictedMax
}

// list returns the evictions remembered.
func (g *ghost) list() []Evictee {
	if len(g.versions) == 0 {
		return nil
	}
	out := make([]Evictee, 0, len(g.order))
	for _, key := range g.order {
		out = append(out, Evictee{Key: key, Version: g.versions[key]})
	}
	return out
}

// learnEvictions takes another copy's latest evictions, sent with a
// snapshot: this copy evicts those keys too (each at that version or
// older) and remembers them, so that a takeover or a sync does not bring
// back an older version than the one evicted from a copy it pulls, whether
// that copy's chunk comes before or after the one with the older version.
func (c *core) learnEvictions(es []Evictee) {
	for _, e := range es {
		c.st.Evict(e.Key, e.Version)
		c.ghost.add(e.Key, e.Version)
	}
}

// unevicted returns recs without the records this node evicted (at their
// version or later); when from is not "", from is told to evict those (an
// Evict after this node's log head), so that its copy agrees with ours.
func (c *core) unevicted(from string, recs []Entry) []Entry {
	if len(c.ghost.versions) == 0 {
		return recs
	}
	var refused []Evictee
	kept := make([]Entry, 0, len(recs))
	for _, e := range recs {
		if v, ok := c.ghost.versions[e.Key]; ok && e.Version <= v {
			refused = append(refused, Evictee{Key: e.Key, Version: v})
			continue
		}
		kept = append(kept, e)
	}
	if refused == nil {
		return recs
	}
	if from != "" && c.serving() {
		c.sendEvict([]string{from}, refused, false)
	}
	return kept
}

// evictWaitMax bounds the evicted keys a replica keeps until the log
// reaches them; past it the oldest are forgotten (anti-entropy repairs
// what they leave different).
const evictWaitMax = 4096

// onEvicted takes this node's store's evictions of the partition. Whatever
// the role, the ghost remembers them: this copy no longer has them.
func (c *core) onEvicted(m Evicted) {
	for _, k := range m.Keys {
		c.ghost.add(k.Key, k.Version)
	}
	switch {
	case c.serving():
		c.evictAll(m.Keys)
	case c.role == RoleReplica && c.ready && c.live[c.primary]:
		// A copy spared until nothing else was left: the primary evicts
		// it for every copy.
		c.sendEvict([]string{c.primary}, m.Keys, true)
	}
}

// sendEvict sends keys to the nodes named, in Evicts of at most about
// ChunkBytes of keys each (a limit lowered at run time evicts many at once),
// after this node's log head.
func (c *core) sendEvict(to []string, keys []Evictee, forced bool) {
	for len(keys) > 0 {
		n, size := 0, 0
		for n < len(keys) && size < c.cfg.ChunkBytes {
			size += len(keys[n].Key) + 16
			n++
		}
		m := Evict{P: c.cfg.P, From: c.cfg.Self, Term: c.term, Seq: c.seq, Keys: keys[:n], forced: forced}
		for _, name := range to {
			c.sendTo(name, m)
		}
		keys = keys[n:]
	}
}

// evictAll evicts keys, each at its version or older, from this primary's
// copy (already done for the store's own evictions) and has every replica
// do the same after the entries logged so far.
func (c *core) evictAll(keys []Evictee) {
	for _, k := range keys {
		c.st.Evict(k.Key, k.Version)
		c.ghost.add(k.Key, k.Version)
	}
	c.sendEvict(c.replicas(), keys, false)
}

func (c *core) onEvict(m Evict) {
	switch {
	case c.serving() && m.Term == c.term && m.From != c.cfg.Self:
		c.evictAll(m.Keys) // a replica's forced eviction
	case c.role == RoleReplica && m.From == c.primary && m.Term >= c.term:
		c.evictWait = append(c.evictWait, m)
		n := 0
		for _, w := range c.evictWait {
			n += len(w.Keys)
		}
		for n > evictWaitMax && len(c.evictWait) > 1 {
			n -= len(c.evictWait[0].Keys)
			c.evictWait = slices.Delete(c.evictWait, 0, 1)
		}
		c.applyEvictions()
	}
}

// applyEvictions applies the primary's evictions whose place in the log
// this replica has reached.
func (c *core) applyEvictions() {
	if len(c.evictWait) == 0 {
		return
	}
	if c.role != RoleReplica {
		c.evictWait = nil
		return
	}
	if c.sync != nil {
		return // the snapshot decides where the log resumes
	}
	kept := c.evictWait[:0]
	for _, m := range c.evictWait {
		switch {
		case m.Term < c.term:
			// An earlier term's: the primary that took over merged the copies.
		case m.Term == c.term && m.Seq <= c.seq:
			for _, k := range m.Keys {
				c.st.Evict(k.Key, k.Version)
				c.ghost.add(k.Key, k.Version)
			}
		default:
			kept = append(kept, m)
		}
	}
	clear(c.evictWait[len(kept):])
	c.evictWait = kept
}

// evictHooks steers and hears this node's store's eviction: a copy this
// node holds for another primary is spared while anything else may go, and
// every eviction is queued for its partition's core.
func (r *Replicator) evictHooks() *store.EvictHooks {
	return &store.EvictHooks{
		Spare: func(key string) bool { return !r.parts[r.partitionOf(key)].serving.Load() },
		Evicted: func(key string, version uint64) {
			p := r.partitionOf(key)
			r.data.mutations[p].Add(1) // snapshots read the store again
			r.evq.mu.Lock()
			r.evq.keys = append(r.evq.keys, evictedKey{p: p, e: Evictee{Key: key, Version: version}})
			r.evq.mu.Unlock()
			select {
			case r.evq.kick <- struct{}{}:
			default:
			}
		},
	}
}

// evictedKey is one eviction waiting for its partition's core.
type evictedKey struct {
	p int
	e Evictee
}

// evictLoop steps the store's evictions into their partitions' cores,
// until Stop.
func (r *Replicator) evictLoop() {
	var spare []evictedKey
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.evq.kick:
		}
		r.evq.mu.Lock()
		keys := r.evq.keys
		r.evq.keys = spare[:0]
		r.evq.mu.Unlock()
		byPart := map[int][]Evictee{}
		for _, k := range keys {
			byPart[k.p] = append(byPart[k.p], k.e)
		}
		for p, es := range byPart {
			_ = r.step(r.parts[p], Evicted{Keys: es})
		}
		clear(keys)
		spare = keys
	}
}
