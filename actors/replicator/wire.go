package replicator

import "github.com/roostkv/roost/actors/store"

// ID identifies a log entry: the primary term and the position in it.
type ID struct {
	Term uint64 `msgpack:"t" json:"term"`
	Seq  uint64 `msgpack:"s" json:"seq"`
}

// Entry is one log entry, published on a partition's log subject: the
// record the primary applied, with its ID. Entry and Batch encode by hand
// (wire_codec.go), in the bytes msgpack would make of their tags: a field
// added here goes there too.
type Entry struct {
	P       int    `msgpack:"p"`
	Term    uint64 `msgpack:"t"`
	Seq     uint64 `msgpack:"s"`
	Key     string `msgpack:"k"`
	Value   []byte `msgpack:"v,omitempty"`
	Version uint64 `msgpack:"ver"`
	Created uint64 `msgpack:"c,omitempty"`
	Flags   uint64 `msgpack:"f,omitempty"`
	Expires int64  `msgpack:"x,omitempty"` // Unix nanoseconds
	Deleted bool   `msgpack:"d,omitempty"`
}

func entryOf(p int, id ID, r store.Record) Entry {
	return Entry{P: p, Term: id.Term, Seq: id.Seq, Key: r.Key, Value: r.Value, Version: r.Version,
		Created: r.Created, Flags: r.Flags, Expires: r.Expires, Deleted: r.Deleted}
}

func (e *Entry) record() store.Record {
	return store.Record{Key: e.Key, Value: e.Value, Version: e.Version, Created: e.Created,
		Flags: e.Flags, Expires: e.Expires, Deleted: e.Deleted}
}

// Batch is what a primary publishes on a partition's log subject: entries
// of one partition with consecutive IDs, those of one write or of a batch
// of writes.
type Batch struct {
	P       int     `msgpack:"p"`
	Entries []Entry `msgpack:"e"`
}

// Ack is a replica's acknowledgement: it applied every entry of the term up
// to Seq. Acks are cumulative.
type Ack struct {
	P    int    `msgpack:"p"`
	Term uint64 `msgpack:"t"`
	Seq  uint64 `msgpack:"s"`
	Node string `msgpack:"n"`
}

// Digest summarises a partition's contents: the XOR of a hash of every
// (key, version, deleted) it holds, and their count.
type Digest struct {
	Sum   uint64 `msgpack:"sum" json:"sum"`
	Count int    `msgpack:"n" json:"count"`
}

// DigestRequest carries a primary's digests of the partitions the receiver
// replicates, each taken at the head in Heads (anti-entropy, request-reply).
type DigestRequest struct {
	From    string         `msgpack:"from"`
	Digests map[int]Digest `msgpack:"digests"`
	Heads   map[int]ID     `msgpack:"heads"`
}

// DigestResponse names the partitions whose copies differ; the replica
// repairs them.
type DigestResponse struct {
	Differ []int `msgpack:"differ,omitempty"`
}

// claims is a node's heartbeat payload: what it says of each partition it
// has a role in or holds data of.
type claims struct {
	Parts map[int]Claim `msgpack:"c"`
	Env   byte          `msgpack:"env,omitempty"` // the log envelope format it takes (envelopeV1); 0 from nodes before envelopes
}
