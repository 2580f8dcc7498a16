package replicator

import "github.com/roostkv/roost/actors/store"

// The messages of the replication core (core.go): what one partition's state
// machine takes in. Wire messages cross the bus between nodes; the others
// come from this node's shell (a write, a table change, a tick). Each is one
// Go type; step dispatches them with one type switch.

// Message is a message step takes: one of the types below.
type Message interface{ isMessage() }

// ---- from this node ----

// Write asks the primary to apply ops, in order, and replicate them.
// Results receives one result per op (it must have len(Ops) elements).
// With AckAll, a writeDone effect with ID tells when every live owner
// applied them.
type Write struct {
	ID      uint64 // the shell's handle of the write, echoed in writeDone
	Ops     []Op
	Ack     AckMode
	Results []OpResult // filled by step
}

// Op is one mutation: exactly one of Set, Del, Incr and Touch. Incr and
// Touch are computed by the primary's core from the key's current entry, in
// the partition's serial step, and logged as the set they amount to
// (incr.go): replicas, fetches and snapshots only ever see sets and deletes.
type Op struct {
	Set   *store.SetRequest
	Del   *store.DeleteRequest
	Incr  *IncrRequest
	Touch *TouchRequest
}

// OpResult is an op's outcome: for a set, an incr or a touch the entry
// written (an incr's Value is the counter's new decimal text), for a
// delete the delete's version (Entry.Version).
type OpResult struct {
	Entry store.Entry
	Err   error
}

// CancelWrite forgets an ack=all write the shell stopped waiting for.
type CancelWrite struct{ ID uint64 }

// SetOwners is a new partition table's view of this partition: its owners,
// primary first, and every live member (servers and proxies).
type SetOwners struct {
	Owners []string
	Live   []string
}

// Tick carries the time and what the peers last said of this partition in
// their heartbeats; timeouts, retries, fences and drops are decided on it.
type Tick struct {
	Now    int64            // Unix nanoseconds, the shell's clock
	Claims map[string]Claim // peer name -> its claim on this partition (absent: holds nothing)
	Heard  map[string]int64 // peer name -> when its last heartbeat arrived (Unix nanoseconds)
}

// HoldCopy says the store holds data of this partition that came from
// outside the protocol (a warm restart's snapshot): it is kept, offered to
// the partition's primary and dropped only once the owners hold the data.
type HoldCopy struct{}

// KeepCopy says the node is stopping: it keeps its copy whatever happens,
// for its warm-restart snapshot, while it still hands it over.
type KeepCopy struct{}

// Repair says anti-entropy found this replica's copy different from its
// primary's: it pushes its copy to the primary and syncs again.
type Repair struct{}

// ---- between nodes (the wire) ----

// LogBatch is a batch of the partition's log, as published by its primary;
// AckWanted is set when a write waits for the replicas (ack=all).
type LogBatch struct {
	Batch     Batch
	AckWanted bool
}

// FetchRequest asks the primary for the entries First..Last of Term.
type FetchRequest struct {
	P     int    `msgpack:"p"`
	From  string `msgpack:"from"`
	Req   uint64 `msgpack:"req"`
	Term  uint64 `msgpack:"t"`
	First uint64 `msgpack:"first"`
	Last  uint64 `msgpack:"last"`
}

// FetchResponse answers a FetchRequest. Truncated: the entries are no longer
// in the log (or the term is over); the replica syncs a snapshot instead.
type FetchResponse struct {
	P         int     `msgpack:"p"`
	From      string  `msgpack:"from"`
	Req       uint64  `msgpack:"req"`
	Entries   []Entry `msgpack:"entries,omitempty"`
	Truncated bool    `msgpack:"truncated,omitempty"`
	Refused   string  `msgpack:"refused,omitempty"` // not the ready primary
}

// SnapshotRequest asks for one chunk of the partition's records, keys after
// After. FenceTerm (non-zero) is a takeover: the sender becomes primary
// under that term and the receiver stops leading the partition first.
// FromPrimary asks only a ready primary (a replica's sync).
type SnapshotRequest struct {
	P           int    `msgpack:"p"`
	From        string `msgpack:"from"`
	Req         uint64 `msgpack:"req"`
	After       string `msgpack:"after,omitempty"`
	FenceTerm   uint64 `msgpack:"fence,omitempty"`
	FromPrimary bool   `msgpack:"primary,omitempty"`
}

// SnapshotResponse is one chunk. Head is the sender's last log ID when the
// chunk was read; Next the cursor of the next chunk ("" = done).
// Superseded (non-zero) refuses a takeover: the receiver leads, or follows
// a leader, under that higher term.
type SnapshotResponse struct {
	P          int     `msgpack:"p"`
	From       string  `msgpack:"from"`
	Req        uint64  `msgpack:"req"`
	Records    []Entry `msgpack:"recs,omitempty"`
	Next       string  `msgpack:"next,omitempty"`
	Head       ID      `msgpack:"head"`
	Refused    string  `msgpack:"refused,omitempty"`
	Superseded uint64  `msgpack:"super,omitempty"`
	// Evicted: on the first chunk, the sender's latest evictions of the
	// partition (its ghost, evict.go), which the receiver applies too.
	Evicted []Evictee `msgpack:"ev,omitempty"`
}

// PushRequest offers records to the partition's primary (a handover, a
// repair, a warm restart's copy): it keeps and logs those that are newer.
type PushRequest struct {
	P       int     `msgpack:"p"`
	From    string  `msgpack:"from"`
	Req     uint64  `msgpack:"req"`
	Records []Entry `msgpack:"recs,omitempty"`
	Last    bool    `msgpack:"last,omitempty"` // the last chunk of the copy
}

// PushResponse answers a PushRequest. Head is the primary's last log ID
// once it logged the pushed records that were newer.
type PushResponse struct {
	P       int    `msgpack:"p"`
	From    string `msgpack:"from"`
	Req     uint64 `msgpack:"req"`
	Head    ID     `msgpack:"head"`
	Applied int    `msgpack:"applied"`
	Refused string `msgpack:"refused,omitempty"`
}

// Ack (wire.go) acknowledges the entries of a term up to a seq.

func (Write) isMessage()            {}
func (CancelWrite) isMessage()      {}
func (SetOwners) isMessage()        {}
func (Tick) isMessage()             {}
func (HoldCopy) isMessage()         {}
func (KeepCopy) isMessage()         {}
func (Repair) isMessage()           {}
func (LogBatch) isMessage()         {}
func (Ack) isMessage()              {}
func (FetchRequest) isMessage()     {}
func (FetchResponse) isMessage()    {}
func (SnapshotRequest) isMessage()  {}
func (SnapshotResponse) isMessage() {}
func (PushRequest) isMessage()      {}
func (PushResponse) isMessage()     {}

// Claim is what a node says of one partition in its heartbeats.
type Claim struct {
	Role  Role   `msgpack:"r"`
	Ready bool   `msgpack:"ok,omitempty"` // primary: takes requests; replica: synced with its primary
	Term  uint64 `msgpack:"t,omitempty"`  // the term led or followed
	Seq   uint64 `msgpack:"s,omitempty"`  // the last entry assigned (primary) or applied in order (replica)
	Holds bool   `msgpack:"h,omitempty"`  // its store may hold data of the partition
	Seen  int64  `msgpack:"-"`            // when the receiver heard it (its clock); set by the receiver
}

// ---- what step asks the shell to do ----

// effect is an output of step.
type effect interface{ isEffect() }

// send delivers a wire message to node To.
type send struct {
	To  string
	Msg Message
}

// publish sends a batch of the log to the partition's replicas: To names
// the live owners other than this node when the batch was logged. The shell
// packs it into each one's envelope (envelope.go), or publishes it on the
// partition's log subject, where every node that follows it gets it.
type publish struct {
	Batch     Batch
	AckWanted bool
	To        []string
}

// follow subscribes to (On) or leaves the partition's log subject.
type follow struct{ On bool }

// writeDone answers an ack=all write: nil once every live owner applied it.
type writeDone struct {
	ID  uint64
	Err error
}

// dropCopy removes the partition's records from the store: every owner
// holds them.
type dropCopy struct{}

func (send) isEffect()      {}
func (publish) isEffect()   {}
func (follow) isEffect()    {}
func (writeDone) isEffect() {}
func (dropCopy) isEffect()  {}
