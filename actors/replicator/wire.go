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

// Kinds of Request.
const (
	kindFetch    = "fetch"    // log entries From..To of Term, from the primary's log
	kindSnapshot = "snapshot" // one chunk of a partition's records, keys after After
	kindPush     = "push"     // records to merge (handover, repair); the receiver applies them by version
	kindDigest   = "digest"   // the sender's digests of partitions the receiver replicates
)

// Request is a replication request to one node (wire.Subjects.NodeRepl).
type Request struct {
	Kind    string         `msgpack:"kind"`
	P       int            `msgpack:"p"`
	From    string         `msgpack:"from"` // the sender's node name
	Term    uint64         `msgpack:"t,omitempty"`
	First   uint64         `msgpack:"first,omitempty"` // fetch: first seq wanted
	Last    uint64         `msgpack:"last,omitempty"`  // fetch: last seq wanted
	After   string         `msgpack:"after,omitempty"` // snapshot: cursor
	Records []Entry        `msgpack:"recs,omitempty"`  // push
	Digests map[int]Digest `msgpack:"digests,omitempty"`
	Heads   map[int]ID     `msgpack:"heads,omitempty"`   // digest: the primary's last ID of each partition, unchanged while its digest was computed
	Primary bool           `msgpack:"primary,omitempty"` // snapshot: only from a ready primary
	Fence   bool           `msgpack:"fence,omitempty"`   // snapshot: the sender takes the partition over; a primary here stops serving it first
}

// Response answers a Request.
type Response struct {
	Error     string  `msgpack:"err,omitempty"`       // the request could not be served (not primary, not ready)
	Truncated bool    `msgpack:"truncated,omitempty"` // fetch: the entries are no longer in the log; take a snapshot
	Entries   []Entry `msgpack:"entries,omitempty"`   // fetch, snapshot
	Head      ID      `msgpack:"head"`                // snapshot: the primary's last ID when the snapshot was taken
	Next      string  `msgpack:"next,omitempty"`      // snapshot: cursor of the next chunk; "" = done
	Differ    []int   `msgpack:"differ,omitempty"`    // digest: partitions found different
	Applied   int     `msgpack:"applied,omitempty"`   // push: records that were newer and applied
}

// Digest summarises a partition's contents: the XOR of a hash of every
// (key, version, deleted) it holds, and their count.
type Digest struct {
	Sum   uint64 `msgpack:"sum" json:"sum"`
	Count int    `msgpack:"n" json:"count"`
}

// heads is a primary's heartbeat payload: the last ID of each partition it
// leads.
type heads struct {
	Heads map[int]ID `msgpack:"heads"`
}
