package replicator

// What the change feed needs of the replicator (node/changes_seq.go): every
// entry this node logs as a partition's primary, with its log ID, and each
// led partition's head. The replication protocol is unchanged: these only
// let the node see what the cores already do.

// Announce has fn called with every run of entries this node logs as a
// partition's primary (writes, and the newer records a catch-up or a push
// merges in), in ID order, under the partition's lock, before the write is
// answered: a partition's entries of one term reach fn with consecutive
// Seqs, starting at 1. fn must be quick and must not call the replicator.
// Announce(nil) stops the calls. Call it before Start.
func (r *Replicator) Announce(fn func(p int, entries []Entry)) {
	if fn == nil {
		r.onLogged.Store(nil)
		return
	}
	r.onLogged.Store(&fn)
}

// Heads calls fn with the term and last log seq of every partition this node
// leads and serves (its ready primary), one partition at a time under its
// lock: every entry up to that seq has been given to Announce's fn before.
func (r *Replicator) Heads(fn func(p int, term, seq uint64)) {
	for _, pt := range r.parts {
		if !pt.serving.Load() {
			continue
		}
		pt.mu.Lock()
		serving, term, seq := pt.c.serving(), pt.c.term, pt.c.seq
		pt.mu.Unlock()
		if serving {
			fn(pt.p, term, seq)
		}
	}
}
