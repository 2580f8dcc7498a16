// Package replicator is the replicator actor of a node: it keeps the copies
// of a partition on its owners in step.
//
// The primary of a partition turns each write into a log entry whose ID,
// (term, seq), is unique and contiguous per (partition, primary term), applies
// it to its store, and publishes it once on the partition's log subject.
// Replicas subscribe to the log subjects of the partitions they hold, apply
// entries in ID order (last writer wins by version, so nothing is applied
// twice and no key goes back), detect gaps from the IDs and from the heads
// the primary announces in its heartbeats, and fetch what they miss by
// request-reply; a gap older than the primary's bounded log is closed with a
// chunked snapshot of the partition.
//
// A node that becomes primary first pulls the partition from every other
// node that holds or held it, merges the copies by version, and only then
// takes requests, under a new term. A node that stops holding a partition
// pushes it to the new primary before dropping it. Anti-entropy rounds
// compare per-partition digests between the primary and its replicas and
// repair differences both ways, so copies converge after a split heals.
//
// docs/replication.md describes the protocol and its guarantees.
package replicator
