package replicator

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
)

// Config sets up a Replicator. Zero durations and sizes mean the default of
// DefaultConfig.
type Config struct {
	Conn       *nats.Conn    // the node's connection
	Subjects   wire.Subjects // the node's subjects
	Store      *store.Store  // the node's store
	Name       string        // this node's name, as the partition table names it
	ID         string        // this node's ID: its request subjects
	Partitions int           // the partition count P
	Replicas   int           // R, the copies of each partition (--replicas)

	// Members returns the current membership view: the peers' claims
	// travel in their heartbeats (Member.Extra).
	Members func() membership.View
	// SetClaims puts this node's claims in its heartbeats.
	SetClaims func([]byte)

	LogSize        int           // entries kept per partition to serve gap fetches
	LogBytes       int64         // bytes of keys and values all the partitions' logs keep, at most
	AckTimeout     time.Duration // how long an ack=all write waits for the replicas
	AntiEntropy    time.Duration // period of digest rounds; negative = off
	Heartbeat      time.Duration // the membership's beat period: claims are announced every beat
	Tick           time.Duration // how often timeouts, retries, fences and hand-offs are looked at
	RequestTimeout time.Duration // how long a request to another node may take before it is sent again
	ChunkBytes     int           // a snapshot or push chunk, at most (plus one record)
	Logger         *slog.Logger
}

// DefaultConfig returns the defaults; the caller sets the connection, store
// and names.
func DefaultConfig() Config {
	return Config{
		Partitions:     271,
		Replicas:       2,
		LogSize:        1024,            // entries: about two seconds of a busy partition
		LogBytes:       64 << 20,        // bytes over all partitions' logs
		AckTimeout:     5 * time.Second, // as docs/replication.md promises
		AntiEntropy:    5 * time.Second, // copies compared this often; a split heals within a few rounds
		Heartbeat:      500 * time.Millisecond,
		Tick:           100 * time.Millisecond, // retries and hand-offs are this prompt
		RequestTimeout: 2 * time.Second,        // a snapshot chunk of ChunkBytes crosses a loaded route well within it
		ChunkBytes:     256 << 10,              // keeps a chunk far under the bus's 1 MiB payload limit
	}
}

// DefaultAckTimeout is DefaultConfig's AckTimeout.
const DefaultAckTimeout = 5 * time.Second

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Partitions == 0 {
		c.Partitions = d.Partitions
	}
	if c.Replicas == 0 {
		c.Replicas = d.Replicas
	}
	if c.LogSize <= 0 {
		c.LogSize = d.LogSize
	}
	if c.LogBytes <= 0 {
		c.LogBytes = d.LogBytes
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = d.AckTimeout
	}
	if c.AntiEntropy == 0 {
		c.AntiEntropy = d.AntiEntropy
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = d.Heartbeat
	}
	if c.Tick <= 0 {
		c.Tick = min(d.Tick, c.Heartbeat)
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.ChunkBytes <= 0 {
		c.ChunkBytes = d.ChunkBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate rejects a configuration the replicator cannot run with.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Conn == nil:
		return errors.New("replicator: no NATS connection")
	case c.Store == nil:
		return errors.New("replicator: no store")
	case c.Name == "" || c.ID == "":
		return errors.New("replicator: the node's name and ID are needed")
	case c.Replicas < 1:
		return fmt.Errorf("replicator: --replicas %d: want at least 1", c.Replicas)
	case c.Partitions < 1:
		return fmt.Errorf("replicator: --partitions %d: want at least 1", c.Partitions)
	case c.AckTimeout < time.Millisecond:
		return fmt.Errorf("replicator: --ack-timeout %s: want at least 1ms", c.AckTimeout)
	}
	return nil
}
