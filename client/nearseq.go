package client

// What the near cache knows of one partition's change feed, and how each
// thing it hears moves it: pure functions, no clock, no I/O
// (nearseq_test.go has their tables). docs/PROTOCOL.md, "Change feed",
// defines the sequence: the changes of one (partition, term) carry
// consecutive seqs from 1, and each node beacons the (term, seq) of the
// partitions it leads after the changes up to them.

// seqState is a subscriber's view of one partition's sequence.
type seqState struct {
	synced bool   // term and seq are a baseline every later change is checked against
	term   uint64 // the primary's term the subscriber follows
	seq    uint64 // the last seq of term it has read
}

// seqVerdict is what a step tells the near cache to do.
type seqVerdict uint8

const (
	seqOK      seqVerdict = iota // in sequence: the partition's entries stay valid
	seqSynced                    // a baseline after none: entries may be kept from now on
	seqGap                       // a seq skipped (a lost message): drop the partition's entries
	seqNewTerm                   // another term (the partition changed hands): drop them
	seqOldTerm                   // a change under a term older than the one followed: drop them, keep following
	seqIgnored                   // nothing learned (an unsequenced change, a stale beacon)
)

// drops reports whether the partition's entries must go.
func (v seqVerdict) drops() bool { return v == seqGap || v == seqNewTerm || v == seqOldTerm }

// live reports whether the step shows the partition's feed reaching the
// subscriber now.
func (v seqVerdict) live() bool { return v != seqIgnored && v != seqOldTerm }

func (v seqVerdict) String() string {
	return [...]string{"ok", "synced", "gap", "new term", "old term", "ignored"}[v]
}

// stepChange is st after reading a change of (term, seq); seq 0 is a change
// outside any sequence, which tells nothing of the partition's sequence.
func stepChange(st seqState, term, seq uint64) (seqState, seqVerdict) {
	switch {
	case seq == 0:
		return st, seqIgnored
	case !st.synced:
		return seqState{synced: true, term: term, seq: seq}, seqSynced
	case term < st.term:
		return st, seqOldTerm // a deposed primary's last word: the value changed under us
	case term > st.term:
		return seqState{synced: true, term: term, seq: seq}, seqNewTerm
	case seq == st.seq+1:
		st.seq = seq
		return st, seqOK
	case seq <= st.seq:
		return st, seqOK // already read (a redelivery): nothing missed
	}
	return seqState{synced: true, term: term, seq: seq}, seqGap
}

// stepHeads is st after reading a beacon that names (term, seq) as the
// partition's head, published after every change up to it.
func stepHeads(st seqState, term, seq uint64) (seqState, seqVerdict) {
	switch {
	case !st.synced:
		return seqState{synced: true, term: term, seq: seq}, seqSynced
	case term < st.term:
		return st, seqIgnored // a deposed primary's beacon: the new one's count
	case term > st.term:
		return seqState{synced: true, term: term, seq: seq}, seqNewTerm
	case seq > st.seq:
		return seqState{synced: true, term: term, seq: seq}, seqGap
	}
	return st, seqOK
}

// stepReconnect is st after the subscriber's connection was lost: whatever
// was published meanwhile is lost, so the next change or beacon is a new
// baseline.
func stepReconnect(seqState) seqState { return seqState{} }
