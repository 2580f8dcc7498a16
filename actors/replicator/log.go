package replicator

// ring holds the last entries of a term, in seq order: at most size of them
// and about maxBytes of keys and values, since the entries keep their values
// alive after the store evicted or replaced them. It allocates as it fills.
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
		g.bytes -= len(g.entries[drop].Key) + len(g.entries[drop].Value)
		g.entries[drop] = Entry{} // let go of its value
		drop++
	}
	g.entries = append(g.entries[drop:], e)
	g.bytes += size
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
