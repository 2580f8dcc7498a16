package node

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// The change feed's sequence: what lets a subscriber tell a lost message
// from a quiet partition (docs/PROTOCOL.md, "Change feed").
//
// Once the node has a replicator, the feed announces what the replicator
// logs as a partition's primary (replicator.Announce), not what the store
// reports: each change then carries its log ID, partition p, the primary's
// term and the entry's seq. The entries of one (p, term) are consecutive
// from 1, and this node announces them in that order, on one connection, so
// a subscriber that reads seq s after s-1 of the same (p, term) missed
// nothing in between, however many changes one message gathers. Every
// logged entry is announced: writes, and the newer records a catch-up or a
// push merges in, which the store's notifications never showed.
//
// A lost message followed by silence is seen through the beacon: every
// wire.FeedHeadsEvery, on wire.Subjects.ChangeHeads and by the same
// connection, the node publishes the (term, seq) of every partition it
// leads, read after the changes up to them were queued and published after
// them. A subscriber whose last seq of (p, term) is below the beacon's
// missed something; one that hears of another term saw the partition change
// hands; one that hears nothing of p for a few beacons cannot tell. Its
// cost: one message a second per node, about 20 bytes per partition it
// leads.

// seqFeed is the feed's part that sequences changes and beacons heads.
type seqFeed struct {
	sequenced    atomic.Bool                                            // the replicator announces the changes: the store's notifications are ignored
	heads        atomic.Pointer[func(fn func(p int, term, seq uint64))] // the replicator's Heads; nil before it exists
	headsSubject string                                                 // wire.Subjects.ChangeHeads
	node         string                                                 // this node's name, in the beacon
	headsBuf     []uint64                                               // the publisher's, reused
}

// sequenceFeed has the replicator announce the changes on the feed, with
// their log IDs, and the feed beacon its heads. Call it before the
// replicator starts.
func (n *Node) sequenceFeed() {
	if n.feed == nil || n.repl == nil {
		return
	}
	heads := n.repl.Heads
	n.feed.heads.Store(&heads)
	n.feed.sequenced.Store(true)
	n.repl.Announce(n.feed.onLogged)
}

// onLogged wakes the local waiters of the entries this node logged as
// primary and queues their announcement. It runs under the partition's
// lock, on the writer's goroutine, before the write is answered.
func (f *feed) onLogged(p int, entries []replicator.Entry) {
	for i := range entries {
		f.waiters.notify(entries[i].Key)
	}
	f.mu.Lock()
	for i := range entries {
		start := 0 // where buf's last message starts
		if k := len(f.cuts); k > 0 {
			start = f.cuts[k-1]
		}
		if len(f.buf)-start > feedMessageMax {
			f.cuts = append(f.cuts, len(f.buf))
		}
		f.buf = appendSeqChange(f.buf, p, &entries[i])
	}
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default: // the publisher is awake already
	}
}

// publishHeads reads the heads of the partitions this node leads, publishes
// every change queued (so those up to the heads), then the beacon. It runs
// on the publisher goroutine and returns publish's spare buffers.
func (f *feed) publishHeads(out []byte, cuts []int) ([]byte, []int) {
	hp := f.heads.Load()
	if hp == nil {
		return out, cuts
	}
	h := f.headsBuf[:0]
	(*hp)(func(p int, term, seq uint64) { h = append(h, uint64(p), term, seq) })
	f.headsBuf = h
	out, cuts = f.publish(out, cuts)
	if len(h) == 0 || f.heard != nil && !f.heard(f.headsSubject) {
		return out, cuts
	}
	data, err := msgpack.Marshal(&wire.FeedHeads{Node: f.node, Every: wire.FeedHeadsEvery, Heads: h})
	if err == nil {
		_ = f.nc.Publish(f.headsSubject, data) // at most once: the next beacon says the same or more
	}
	return out, cuts
}

// appendSeqChange encodes a logged entry as a Change map of six fields:
// appendChange's three, then "p" (uint32), "t" and "s" (uint64), each of a
// fixed width so that scanSeq reads them in place.
func appendSeqChange(b []byte, p int, e *replicator.Entry) []byte {
	at := len(b)
	b = appendChange(b, store.Change{Key: e.Key, Version: e.Version, Deleted: e.Deleted})
	b[at] = 0x86 // map of 6
	b = append(b, 0xa1, 'p', 0xce)
	b = binary.BigEndian.AppendUint32(b, uint32(p))
	b = append(b, 0xa1, 't', 0xcf)
	b = binary.BigEndian.AppendUint64(b, e.Term)
	b = append(b, 0xa1, 's', 0xcf)
	return binary.BigEndian.AppendUint64(b, e.Seq)
}

// scanSeq reads the three fields appendSeqChange adds after appendChange's
// into c, and returns what follows them.
func scanSeq(b []byte, c *rawChange) (rest []byte, ok bool) {
	const size = 7 + 11 + 11
	if len(b) < size || string(b[0:3]) != "\xa1p\xce" || string(b[7:10]) != "\xa1t\xcf" || string(b[18:21]) != "\xa1s\xcf" {
		return nil, false
	}
	c.p = int(binary.BigEndian.Uint32(b[3:]))
	c.term = binary.BigEndian.Uint64(b[10:])
	c.seq = binary.BigEndian.Uint64(b[21:])
	return b[size:], true
}
