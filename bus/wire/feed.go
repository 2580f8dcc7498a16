package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// The change feed as its subscribers read it (docs/PROTOCOL.md, "Change
// feed"). A node publishes on Subjects.Changes one or more FeedChange maps
// back to back; on Subjects.ChangeHeads, every FeedHeadsEvery, one
// FeedHeads map. Nodes encode changes by hand (node/changes.go); these types
// are for readers such as the Go client's near cache.

// FeedChange is one change of the feed: key Key was set or deleted, taking
// version Version. A change the replication log carries has Seq > 0: it is
// entry Seq of partition P's term Term, and the entries of one (P, Term)
// are announced with consecutive Seqs starting at 1. Seq 0 means a change
// outside any sequence (a node with no replicator; an old node), which a
// subscriber cannot check for gaps.
type FeedChange struct {
	Key     string `msgpack:"k"`
	Version uint64 `msgpack:"ver"`
	Deleted bool   `msgpack:"del"`
	P       int    `msgpack:"p"`
	Term    uint64 `msgpack:"t"`
	Seq     uint64 `msgpack:"s"`
}

// FeedHeads is a node's beacon on Subjects.ChangeHeads: for every partition
// it leads and serves, the term and the seq of the last entry it logged, at
// a moment after every change up to that seq was published on
// Subjects.Changes by the same connection (so a subscriber of both subjects
// on one connection, reading them in arrival order, has read those changes
// first unless it lost them).
type FeedHeads struct {
	Node  string   `msgpack:"n"` // the node's name
	Every int64    `msgpack:"i"` // milliseconds until its next beacon
	Heads []uint64 `msgpack:"h"` // triples: partition, term, seq
}

// FeedHeadsEvery is how often a node publishes its FeedHeads.
const FeedHeadsEvery = 1000 // milliseconds

// EachFeedChange calls fn with every change of a message of the feed, in
// order. It returns an error for a message that does not decode (after
// calling fn with the changes before the fault) or holds no change.
func EachFeedChange(data []byte, fn func(FeedChange)) error {
	if len(data) == 0 {
		return errors.New("change feed: empty message")
	}
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	for {
		var c FeedChange
		if err := dec.Decode(&c); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("change feed: %w", err)
		}
		fn(c)
	}
}
