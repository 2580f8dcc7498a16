package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// Writes go through the replicator (actors/replicator): it applies them to
// the store as the partition's primary, gives them log IDs and publishes
// them to the replicas. docs/replication.md tells the whole protocol.

// startReplicator makes the replicator; it needs the membership for the
// heads its heartbeats carry.
func (n *Node) startReplicator() error {
	n.repl = replicator.New(replicator.Config{
		Conn:        n.bus.Conn(),
		Subjects:    n.subj,
		Store:       n.store,
		Name:        n.cfg.Name,
		ID:          n.id,
		Partitions:  n.cfg.Partitions,
		Members:     n.members.View,
		SetHeads:    n.members.SetExtra,
		LogBytes:    n.cfg.MaxMemory / 8, // 0 (unlimited memory) = the default
		AckTimeout:  n.cfg.AckTimeout,
		AntiEntropy: n.cfg.AntiEntropy,
		Tick:        n.cfg.HeartbeatInterval,
		Logger:      n.log,
	})
	if n.warm {
		// The snapshot may hold partitions this node does not own now: the
		// first table hands them over and drops them.
		n.repl.HoldAll()
	}
	if err := n.repl.Start(); err != nil {
		return fmt.Errorf("node: replicator: %w", err)
	}
	return nil
}

// ReplicationLag is how long after their primary this node's replicas
// applied the log entries received since the previous call (which resets
// it): for benchmarks and /metrics.
func (n *Node) ReplicationLag() replicator.Lag {
	if n.repl == nil {
		return replicator.Lag{}
	}
	return n.repl.Lag()
}

// ackMode converts a parsed ack header.
func ackMode(ack string) replicator.AckMode {
	if ack == wire.AckAll {
		return replicator.AckAll
	}
	return replicator.AckPrimary
}

// replicate runs a write of key through the replicator, waiting for the
// partition when this node leads it but is still pulling it in.
func (n *Node) replicate(key, ack string, apply func(emit func(store.Record)) error) error {
	if n.repl == nil {
		return apply(func(store.Record) {})
	}
	p := partition.Of(key, n.cfg.Partitions)
	err := n.repl.Write(p, ackMode(ack), apply)
	if errors.Is(err, replicator.ErrNotReady) {
		if err = n.awaitPartition(p); err == nil {
			err = n.repl.Write(p, ackMode(ack), apply)
		}
	}
	return n.replicationError(p, err)
}

// replicationError puts an error of the replicator in the API's words.
func (n *Node) replicationError(p int, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replicator.ErrNotReady), errors.Is(err, context.DeadlineExceeded):
		return &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("partition %d is still syncing on its new primary; retry shortly", p)}
	case errors.Is(err, replicator.ErrNotPrimary):
		return &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("partition %d is moving to another primary; retry shortly", p)}
	case errors.Is(err, replicator.ErrAckTimeout):
		return &apiError{code: wire.CodeUnavailable, msg: fmt.Sprintf("ack=all: the primary applied the write but not every live owner of partition %d did within %s; it may or may not survive a failure of the primary", p, n.ackTimeout())}
	case errors.Is(err, replicator.ErrStopped):
		return &apiError{code: wire.CodeUnavailable, msg: "the node is stopping"}
	}
	return err
}

func (n *Node) ackTimeout() time.Duration {
	if n.cfg.AckTimeout > 0 {
		return n.cfg.AckTimeout
	}
	return replicator.DefaultAckTimeout
}

// awaitPartition waits until this node serves partition p as its primary,
// for at most forwardTimeout: a request that reaches a primary still
// pulling the partition in waits for it rather than reading an incomplete
// copy. Its errors are the replicator's (see replicationError).
func (n *Node) awaitPartition(p int) error {
	if n.repl == nil || n.repl.Ready(p) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), forwardTimeout)
	defer cancel()
	return n.repl.AwaitReady(ctx, p)
}

// recordOf is the replication record of a stored entry.
func recordOf(e store.Entry) store.Record {
	return store.Record{Key: e.Key, Value: e.Value, Version: e.Version, Created: e.Created, Flags: e.Flags, Expires: e.Expires}
}

// handOver is the data side of a graceful leave: every partition this node
// holds is pushed to its primary in the table without it.
func (n *Node) handOver(wait time.Duration) {
	if n.repl == nil || n.members == nil {
		return
	}
	r := n.routing.Load()
	if r == nil {
		return
	}
	t := r.table.Without(n.cfg.Name)
	if t == nil {
		return // the last server: nobody to hand over to
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	start := time.Now()
	if err := n.repl.HandOver(ctx, t, r.ids); err != nil {
		n.log.Warn("stopping before every partition was handed over", "waited", wait)
		return
	}
	n.log.Info("partitions handed over", "took", time.Since(start))
}
