package store

import (
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"time"
)

// ErrConfig is wrapped by every error of Config.Validate.
var ErrConfig = errors.New("store: invalid config")

// Config sets up a Store. The zero value is valid: unlimited memory, default
// shard count, a one-second sweep, ten-minute tombstones and the wall clock.
type Config struct {
	// MaxMemory is the limit, in bytes, on the accounted memory: for each entry
	// len(key)+len(value)+EntryOverhead. It is split evenly over the shards, and
	// each shard evicts to stay within its share. 0 = unlimited (no eviction).
	MaxMemory int64
	// Shards is the number of independently locked shards, a power of two.
	// 0 = default: the smallest power of two >= 4*GOMAXPROCS and >= 16,
	// halved (down to 1) while a shard's share of MaxMemory would be below
	// MinShardBudget.
	Shards int
	// SweepInterval is how often the background loop removes expired entries.
	// 0 = DefaultSweepInterval.
	SweepInterval time.Duration
	// TombstoneTTL is how long the store remembers a deleted key: a delete of
	// a present key leaves a tombstone that carries the delete's version, is
	// invisible to Get, Scan and Stats.Keys, and lets MaxVersion count
	// deletes (the consul index of a prefix). The sweep removes tombstones
	// older than this, and eviction takes the oldest tombstones before any
	// live entry. 0 = DefaultTombstoneTTL; negative = keep no tombstones.
	TombstoneTTL time.Duration
	// Clock tells the time for TTLs and versions. nil = the wall clock.
	Clock Clock
	// Pinned is a key prefix whose entries are never evicted (pin.go): the
	// owner's own state kept among the cached data. "" = none.
	Pinned string
}

// Defaults.
const (
	DefaultSweepInterval = time.Second
	DefaultTombstoneTTL  = 10 * time.Minute // long enough for a blocking query (at most 10 minutes) to see a delete
	MinShards            = 16               // floor of the default shard count
	MaxShards            = 1 << 16          // largest accepted Shards
	MinShardBudget       = 4 << 20          // bytes: the default shard count keeps at least this much MaxMemory per shard, so a 1 MiB value never empties a shard
)

// DefaultConfig is the configuration a node starts from: unlimited memory,
// shard count chosen at New, one-second sweep, ten-minute tombstones, wall
// clock.
func DefaultConfig() Config {
	return Config{SweepInterval: DefaultSweepInterval, TombstoneTTL: DefaultTombstoneTTL}
}

// Validate rejects nonsense, naming the offending field.
func (c Config) Validate() error {
	switch {
	case c.MaxMemory < 0:
		return fmt.Errorf("%w: MaxMemory must be >= 0 (0 = unlimited), got %d", ErrConfig, c.MaxMemory)
	case c.Shards < 0 || c.Shards > MaxShards:
		return fmt.Errorf("%w: Shards must be between 0 (default) and %d, got %d", ErrConfig, MaxShards, c.Shards)
	case c.Shards&(c.Shards-1) != 0:
		return fmt.Errorf("%w: Shards must be 0 or a power of two, got %d", ErrConfig, c.Shards)
	case c.SweepInterval < 0:
		return fmt.Errorf("%w: SweepInterval must be >= 0 (0 = %v), got %v", ErrConfig, DefaultSweepInterval, c.SweepInterval)
	}
	return nil
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.Shards == 0 {
		c.Shards = defaultShards(runtime.GOMAXPROCS(0), c.MaxMemory)
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = DefaultTombstoneTTL
	}
	if c.Clock == nil {
		c.Clock = WallClock{}
	}
	return c
}

// defaultShards is the smallest power of two >= 4*procs and >= MinShards,
// halved while a shard's share of maxMemory would fall below MinShardBudget.
func defaultShards(procs int, maxMemory int64) int {
	n := max(1<<bits.Len(uint(4*procs-1)), MinShards)
	for maxMemory > 0 && n > 1 && maxMemory/int64(n) < MinShardBudget {
		n /= 2
	}
	return n
}
