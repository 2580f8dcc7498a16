package wire

import (
	"strconv"
	"strings"
)

// DefaultPrefix is the subject prefix of the public API when none is configured.
const DefaultPrefix = "roost"

// ServiceName is the name the API registers as a NATS micro service, so that
// `nats micro ls` and `$SRV.PING.roost` find every node.
const ServiceName = "roost"

// Subjects after the prefix. Text-API subjects are "<prefix>.<op>.<key>", the
// key being the whole rest of the subject, dots included.
const (
	getOp      = "get"          // text API: get a key
	setOp      = "set"          // text API: set a key
	delOp      = "del"          // text API: delete a key
	loadOp     = "load"         // loaders: "<prefix>.load.<key>", answered by a loader, asked by the key's primary on a miss
	incrOp     = "incr"         // text API: add to a counter
	touchOp    = "touch"        // text API: reset a key's expiry
	batchSubj  = "bin.batch"    // binary API: a batch of get/set/delete operations
	scanSubj   = "bin.scan"     // binary API: one page of a prefix scan
	statusSubj = "admin.status" // node status as JSON
	svcPickOp  = "svc.pick"     // "<prefix>.svc.pick.<service>": one healthy instance of a service, chosen by weight

	// Cluster subjects.
	heartbeatSubj   = "sys.hb"            // membership heartbeats, every node publishes and subscribes
	changesSubj     = "sys.changes"       // the change feed: every write a primary applies, announced once
	changeHeadsSubj = "sys.changes.heads" // the change feed's beacon: each primary's (term, seq) per partition
	tableSubj       = "admin.table"       // the partition table as JSON, from any node
	membersSubj     = "admin.members"     // the membership view as JSON, from any node
	forceLeaveSubj  = "admin.force-leave" // a node name to force out; every node subscribes, no queue group
	nodeSubj        = "n"                 // "<prefix>.n.<node id>.<what>": one node's own subjects
	partitionSubj   = "p"                 // "<prefix>.p.<partition>.<what>": served by the partition's primary
)

// Subjects names every subject of one Roost deployment, all under one prefix.
// The zero value is not usable; build one with NewSubjects.
type Subjects struct {
	prefix string // e.g. "roost", never empty, no trailing dot

	getBase, setBase, delBase string // "roost.get." etc., precomputed for the hot path
	loadBase                  string // "roost.load."
	incrBase, touchBase       string
}

// NewSubjects returns the subjects under prefix; "" means DefaultPrefix.
func NewSubjects(prefix string) Subjects {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return Subjects{
		prefix:  prefix,
		getBase: prefix + "." + getOp + ".",
		setBase: prefix + "." + setOp + ".",
		delBase: prefix + "." + delOp + ".",

		loadBase:  prefix + "." + loadOp + ".",
		incrBase:  prefix + "." + incrOp + ".",
		touchBase: prefix + "." + touchOp + ".",
	}
}

// Prefix returns the prefix every subject starts with.
func (s Subjects) Prefix() string { return s.prefix }

// Get is the text-API subject that reads key.
func (s Subjects) Get(key string) string { return s.getBase + key }

// Set is the text-API subject that writes key.
func (s Subjects) Set(key string) string { return s.setBase + key }

// Del is the text-API subject that deletes key.
func (s Subjects) Del(key string) string { return s.delBase + key }

// Load is the subject a loader answers for key (docs/PROTOCOL.md,
// "Loaders"): the key's primary asks it when a get misses.
func (s Subjects) Load(key string) string { return s.loadBase + key }

// LoadProbe is the subject beside key's load subject that no loader
// subscribes to: "<prefix>.noload.<key>". The subscriptions it matches are
// observers' ("<prefix>.>", ">", "<prefix>.*.<key>"), which match the load
// subject too; a node discounts them when it asks whether a loader listens,
// so a `nats sub 'roost.>'` is not taken for a loader.
func (s Subjects) LoadProbe(key string) string { return s.LoadProbeBase() + key }

// LoadProbeBase is LoadProbe's subject without the key.
func (s Subjects) LoadProbeBase() string { return s.prefix + ".noload." }

// LoadPattern is the subject a loader subscribes to for the keys matching
// pattern, a key with NATS wildcards ("users.>", "*.avatar"); "" = every key.
func (s Subjects) LoadPattern(pattern string) string {
	if pattern == "" {
		pattern = ">"
	}
	return s.loadBase + pattern
}

// LoadKey returns the key of a loader subject ("<prefix>.load.<key>"), or
// ok=false when subject is not of that form.
func (s Subjects) LoadKey(subject string) (key string, ok bool) {
	key, ok = strings.CutPrefix(subject, s.loadBase)
	if !ok || key == "" {
		return "", false
	}
	return key, true
}

// Incr is the text-API subject that adds to the counter key.
func (s Subjects) Incr(key string) string { return s.incrBase + key }

// Touch is the text-API subject that resets key's expiry.
func (s Subjects) Touch(key string) string { return s.touchBase + key }

// IncrAll is the wildcard subject of every text-API incr.
func (s Subjects) IncrAll() string { return s.incrBase + ">" }

// TouchAll is the wildcard subject of every text-API touch.
func (s Subjects) TouchAll() string { return s.touchBase + ">" }

// GetAll, SetAll and DelAll are the wildcard subjects the API subscribes to.
func (s Subjects) GetAll() string { return s.getBase + ">" }

// SetAll is the wildcard subject of every text-API set.
func (s Subjects) SetAll() string { return s.setBase + ">" }

// DelAll is the wildcard subject of every text-API delete.
func (s Subjects) DelAll() string { return s.delBase + ">" }

// Batch is the binary-API subject for a BatchRequest.
func (s Subjects) Batch() string { return s.prefix + "." + batchSubj }

// Scan is the binary-API subject for a ScanRequest.
func (s Subjects) Scan() string { return s.prefix + "." + scanSubj }

// Status is the subject that answers a node's status as JSON.
func (s Subjects) Status() string { return s.prefix + "." + statusSubj }

// Heartbeat is the subject of membership heartbeats.
func (s Subjects) Heartbeat() string { return s.prefix + "." + heartbeatSubj }

// Changes is the change feed: the node that applies a write (the primary of
// its partition) publishes it there once, as a msgpack {k, ver, del, p, t,
// s} (p, t, s: its log ID; see FeedChange).
// Blocking HTTP queries and `roost watch` listen to it.
func (s Subjects) Changes() string { return s.prefix + "." + changesSubj }

// ChangeHeads is the change feed's beacon: every FeedHeadsEvery, each node
// publishes the (term, seq) of every partition it leads (FeedHeads), so
// that a subscriber tells a lost change from a quiet partition.
func (s Subjects) ChangeHeads() string { return s.prefix + "." + changeHeadsSubj }

// Table answers the partition table (JSON) from any node.
func (s Subjects) Table() string { return s.prefix + "." + tableSubj }

// Members answers the membership view (JSON) from any node.
func (s Subjects) Members() string { return s.prefix + "." + membersSubj }

// ForceLeave carries the name of a suspect or dead member (JSON
// {"name": ...}) that every node must mark left. Every node subscribes
// without a queue group and answers with its result, so the sender can
// gather the acknowledgements.
func (s Subjects) ForceLeave() string { return s.prefix + "." + forceLeaveSubj }

// NodeBatch is a BatchRequest subject served by one node only: smart clients
// send a partition's operations straight to its primary this way.
func (s Subjects) NodeBatch(nodeID string) string {
	return s.prefix + "." + nodeSubj + "." + nodeID + ".batch"
}

// NodeScan is a ScanRequest subject served by one node: its page of the keys
// of the partitions it is primary for. Scans of the whole cluster gather them.
func (s Subjects) NodeScan(nodeID string) string {
	return s.prefix + "." + nodeSubj + "." + nodeID + ".scan"
}

// NodeKV is the subject of one node's KV reads for the HTTP API: one key of
// a partition it leads, or its page of the keys under a prefix, with the
// index (highest version, deletes included) they carry.
func (s Subjects) NodeKV(nodeID string) string {
	return s.prefix + "." + nodeSubj + "." + nodeID + ".kv"
}

// NodeIndex is the subject that answers one node's index of a prefix: the
// highest version of the keys under it that the node holds, deletes included.
func (s Subjects) NodeIndex(nodeID string) string {
	return s.prefix + "." + nodeSubj + "." + nodeID + ".index"
}

// NodeAdmin is the subject of admin requests to one node (force-leave,
// tags), JSON in and out; verb is e.g. "tags" or "status".
func (s Subjects) NodeAdmin(nodeID, verb string) string {
	return s.prefix + "." + nodeSubj + "." + nodeID + ".admin." + verb
}

// PartitionBatch is the BatchRequest subject of one partition, served by the
// node that is its primary in its own view: nodes forward there.
func (s Subjects) PartitionBatch(partition int) string {
	return s.prefix + "." + partitionSubj + "." + strconv.Itoa(partition) + ".batch"
}

// SvcPick is the subject that answers one passing instance of service
// name (the rest of the subject, dots included), chosen by weight.
func (s Subjects) SvcPick(name string) string { return s.prefix + "." + svcPickOp + "." + name }

// SvcPickAll is the wildcard every node serves SvcPick on.
func (s Subjects) SvcPickAll() string { return s.prefix + "." + svcPickOp + ".>" }

// SvcName returns the service name of a SvcPick subject, or ok=false.
func (s Subjects) SvcName(subject string) (name string, ok bool) {
	name, ok = strings.CutPrefix(subject, s.prefix+"."+svcPickOp+".")
	return name, ok && name != ""
}

// TextKey returns the key of a text-API subject ("<prefix>.<op>.<key>") for
// op "get", "set", "del", "incr" or "touch", or ok=false when subject is not of that form.
func (s Subjects) TextKey(op, subject string) (key string, ok bool) {
	var base string
	switch op {
	case getOp:
		base = s.getBase
	case setOp:
		base = s.setBase
	case delOp:
		base = s.delBase
	case incrOp:
		base = s.incrBase
	case touchOp:
		base = s.touchBase
	default:
		return "", false
	}
	key, ok = strings.CutPrefix(subject, base)
	if !ok || key == "" {
		return "", false
	}
	return key, true
}

// PartitionLog is the subject the primary of a partition publishes its log
// entries on, once each; the partition's replicas subscribe to it.
func (s Subjects) PartitionLog(partition int) string {
	return s.prefix + "." + partitionSubj + "." + strconv.Itoa(partition) + ".log"
}

// NodeRepl is the subject of replication requests to one node: log fetches,
// snapshot chunks, digests and repairs (msgpack, see docs/replication.md).
func (s Subjects) NodeRepl(nodeID string) string {
	return s.prefix + "." + nodeSubj + "." + nodeID + ".repl"
}

// NodeLog is the subject a node takes log envelopes on: the batches of
// the log of several partitions its primary peer logged in one drain
// (docs/replication.md, "Envelopes").
func (s Subjects) NodeLog(nodeID string) string {
	return s.prefix + "." + nodeSubj + "." + nodeID + ".log"
}

// NodeAck is the subject a primary hears its replicas' acknowledgements on.
func (s Subjects) NodeAck(nodeID string) string {
	return s.prefix + "." + nodeSubj + "." + nodeID + ".ack"
}

// ConfigAdmin is the subject of runtime config requests (JSON ConfigRequest
// in, ConfigReply out; node/runtime_config_api.go), answered by any node.
func (s Subjects) ConfigAdmin() string { return s.prefix + ".admin.config" }
