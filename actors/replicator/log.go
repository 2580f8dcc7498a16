package replicator

// ring holds the last entries of a term, in seq order, that a replica may
// still fetch: at most size of them and about maxBytes of keys and values,
// since the entries keep their values alive after the store evicted or
// replaced them. The primary trims it to the entries some owner has not
// applied yet (core.trimLog): what every other owner acknowledged is never
// fetched again, and a partition with no other owner keeps nothing. It
// allocates as it fills and lets go of its array once empty.
type ring struct {
	entries  []Entry // seqs entries[0].Seq ..
	bytes    int     // their keys and values
	size     int
	maxBytes int
}

func newRing(size, maxBytes int) ring { return ring{size: size, maxBytes: maxBytes} }

func (g *ring) reset() { g.entries, g.bytes = nil, 0 }

// add appends e, whose seq follows the newest, forgetting the oldest entries
// as the limits require.
func (g *ring) add(e Entry) {
	size := len(e.Key) + len(e.Value)
	drop := 0
	for drop < len(g.entries) && (len(g.entries)-drop >= g.size || g.bytes+size > g.maxBytes) {
		drop++
	}
	g.forget(drop)
	g.entries = append(g.entries, e)
	g.bytes += size
}

// trim forgets the entries up to seq floor.
func (g *ring) trim(floor uint64) {
	drop := 0
	for drop < len(g.entries) && g.entries[drop].Seq <= floor {
		drop++
	}
	g.forget(drop)
}

// forget drops the n oldest entries.
func (g *ring) forget(n int) {
	if n == 0 {
		return
	}
	if n == len(g.entries) {
		g.reset() // the array goes too: an idle or single-owner partition keeps nothing
		return
	}
	for i := range n {
		g.bytes -= len(g.entries[i].Key) + len(g.entries[i].Value)
		g.entries[i] = Entry{} // let go of its value
	}
	g.entries = g.entries[n:]
}

// slice returns the entries first..last it holds, or ok=false when first is
// no longer held.
func (g *ring) slice(first, last uint64) (out []Entry, ok bool) {
	if len(g.entries) == 0 || first < g.entries[0].Seq {
		return nil, false
	}
	i := int(first - g.entries[0].Seq)
	for ; i < len(g.entries) && g.entries[i].Seq <= last; i++ {
		out = append(out, g.entries[i])
	}
	return out, true
}
