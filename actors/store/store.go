package store

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/roostkv/roost/actors"
)

// Store is a sharded in-memory key-value store with versions, TTLs, CAS and
// S3-FIFO eviction under a memory limit. Get, Set, Delete, Scan and Stats may
// be called by any number of goroutines; they work whether or not the
// background loop runs (see Start).
type Store struct {
	cfg    Config
	seed   maphash.Seed // per store, so shard placement cannot be attacked from outside
	mask   uint64       // len(shards)-1
	shards []shard
	clock  Clock
	vc     hlc
	notify atomic.Pointer[func(Change)] // called with every change; nil = nobody listens
	gone   goneHook                     // called with every key expired or evicted (gone.go); nil = nobody listens
	evict  evictHooks                   // steer and hear eviction (evict.go); nil = none

	inbox     *actors.Inbox[message]
	runner    actors.Runner
	newTicker func(d time.Duration) (<-chan time.Time, func()) // the sweep's ticker; tests swap it per instance

	maxMemory atomic.Int64 // the limit now: cfg.MaxMemory, until SetMaxMemory (limit.go)
}

// New makes a store; call Start to run its background loop.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Store{
		cfg:       cfg,
		seed:      maphash.MakeSeed(),
		mask:      uint64(cfg.Shards - 1),
		shards:    make([]shard, cfg.Shards),
		clock:     cfg.Clock,
		inbox:     actors.NewInbox[message](inboxSize),
		newTicker: realTicker,
	}
	s.vc.clock = cfg.Clock
	s.maxMemory.Store(cfg.MaxMemory)
	budget := cfg.MaxMemory / int64(cfg.Shards)
	for i := range s.shards {
		s.shards[i] = newShard(budget)
		s.shards[i].tombTTL = max(cfg.TombstoneTTL, 0)
		s.shards[i].gone = &s.gone
		s.shards[i].evict = &s.evict
		s.shards[i].pol.pin = cfg.Pinned
	}
	unmapOnCollect(s.shards)
	return s, nil
}

// shardOf returns the key's shard and the 32-bit hash used inside it (the
// upper half of the 64-bit hash; the lower bits chose the shard).
func (s *Store) shardOf(key string) (*shard, uint32) {
	h := maphash.String(s.seed, key)
	return &s.shards[h&s.mask], uint32(h >> 32)
}

// Get returns the live entry of key, or ErrNotFound when it is absent or
// expired (an expired entry is removed and counted as an expiration). The
// value is a copy, the caller's to keep (GetAppend copies into a buffer).
func (s *Store) Get(key string) (Entry, error) {
	sh, h := s.shardOf(key)
	return sh.get(h, key, s.clock)
}

// GetAppend is Get that appends the value to buf and returns it as the
// entry's Value: with a buffer of room enough, a read that allocates
// nothing (Get allocates the value's copy).
func (s *Store) GetAppend(key string, buf []byte) (Entry, error) {
	sh, h := s.shardOf(key)
	e, _, err := sh.lookupInto(h, key, s.clock, buf)
	return e, err
}

// Lookup is Get that also tells, when key is absent, the version of the
// delete that removed it as long as its tombstone is kept (0 = none), in
// one step: the index of the key as consul's API reports it.
func (s *Store) Lookup(key string) (e Entry, deleted uint64, err error) {
	sh, h := s.shardOf(key)
	return sh.lookup(h, key, s.clock)
}

// Set writes a key and returns the stored entry with its new version.
// It fails with ErrInvalid (empty key, key over MaxKeyLen, negative TTL),
// ErrCASMismatch, or ErrTooLarge when the value is over MaxValueLen or the
// entry alone exceeds a shard's share of MaxMemory.
// The store copies req.Value into its arena; the caller may reuse it. The
// returned entry's Value is req.Value.
func (s *Store) Set(req SetRequest) (Entry, error) {
	switch {
	case req.Key == "":
		return Entry{}, fmt.Errorf("%w: empty key", ErrInvalid)
	case len(req.Key) > MaxKeyLen:
		return Entry{}, fmt.Errorf("%w: key of %d bytes, the limit is %d", ErrInvalid, len(req.Key), MaxKeyLen)
	case int64(len(req.Value)) > MaxValueLen:
		return Entry{}, fmt.Errorf("%w: value of %d bytes, the limit is %d", ErrTooLarge, len(req.Value), int64(MaxValueLen))
	case req.TTL < 0:
		return Entry{}, fmt.Errorf("%w: negative TTL %v", ErrInvalid, req.TTL)
	}
	sh, h := s.shardOf(req.Key)
	e, err := sh.set(h, &req, &s.vc)
	if err == nil {
		if fn := s.notify.Load(); fn != nil {
			(*fn)(Change{Key: req.Key, Version: e.Version})
		}
	}
	return e, err
}

// Delete removes a key and returns the delete's version. Deleting an absent
// key succeeds (and still gets a version, but changes nothing). With CheckCAS
// it follows Set's rules: CAS 0 = only if absent, else only if present at
// that version; otherwise ErrCASMismatch. A delete of a present key leaves a
// tombstone (see Config.TombstoneTTL).
func (s *Store) Delete(req DeleteRequest) (uint64, error) {
	version, _, err := s.Remove(req)
	return version, err
}

// Remove is Delete that also tells whether a present key was deleted (and
// left a tombstone) rather than nothing changing.
func (s *Store) Remove(req DeleteRequest) (version uint64, deleted bool, err error) {
	if req.Key == "" {
		return 0, false, fmt.Errorf("%w: empty key", ErrInvalid)
	}
	sh, h := s.shardOf(req.Key)
	version, deleted, err = sh.del(h, &req, &s.vc)
	if deleted {
		if fn := s.notify.Load(); fn != nil {
			(*fn)(Change{Key: req.Key, Version: version, Deleted: true})
		}
	}
	return version, deleted, err
}

// Notify has fn called with every change the store applies: each successful
// Set, and each Delete of a present key; not expirations, evictions or Drop.
// fn runs on the goroutine that made the change, after the store let go of
// its locks, so it may call the store; it must be quick, as it delays the
// writer. Changes of one key made concurrently may reach fn out of order:
// their versions tell the order. Notify(nil) stops the calls.
func (s *Store) Notify(fn func(Change)) {
	if fn == nil {
		s.notify.Store(nil)
		return
	}
	s.notify.Store(&fn)
}

// MaxVersion is the highest version of the entries whose key has the
// prefix ("" = every key), deletes included while their tombstones are kept;
// 0 when there is none. Every later change under the prefix has a higher
// version. It reads every shard under its lock in turn.
func (s *Store) MaxVersion(prefix string) uint64 {
	now := s.clock.Now().UnixNano()
	var top uint64
	for i := range s.shards {
		top = max(top, s.shards[i].maxVersion(prefix, now))
	}
	return top
}

// Scan returns the live entries whose key has the prefix and sorts strictly
// after `after`, in byte order, at most limit of them (limit <= 0 = all);
// more reports that entries were left out. With keysOnly the entries carry
// no Value. Each shard is read under its lock in turn, so the result is not
// one atomic snapshot of the whole store.
func (s *Store) Scan(prefix, after string, limit int, keysOnly bool) (entries []Entry, more bool) {
	now := s.clock.Now().UnixNano()
	for i := range s.shards {
		entries = s.shards[i].scan(entries, prefix, after, !keysOnly, now)
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	if limit > 0 && len(entries) > limit {
		return entries[:limit:limit], true
	}
	return entries, false
}

// Drop removes every entry whose key matches, tombstones included, and
// returns how many live entries it removed: a node drops the partitions it
// no longer holds. Drops are not counted as deletes, evictions or
// expirations, take no version and are not reported to Notify.
func (s *Store) Drop(match func(key string) bool) int {
	n := 0
	for i := range s.shards {
		n += s.shards[i].dropMatching(match)
	}
	return n
}

// Stats sums the shards' counters. Shards are read one after another, so
// the sum is not one atomic snapshot.
func (s *Store) Stats() Stats {
	st := Stats{MaxBytes: s.maxMemory.Load()}
	for i := range s.shards {
		s.shards[i].stats(&st)
	}
	return st
}

// Observe makes every later version greater than v. Call it with versions
// learnt from peers so that a key's version keeps rising when another node
// takes over its writes.
func (s *Store) Observe(v uint64) { s.vc.observe(v) }

// Shards is the number of shards in use.
func (s *Store) Shards() int { return len(s.shards) }

// ShardBudget is the accounted bytes one shard may hold (0 = unlimited): the
// largest entry Set accepts is this much.
func (s *Store) ShardBudget() int64 { return s.shards[0].budget }

// AskGet is Get through the store's actor loop (ask and wait). It exists to
// measure what the mailbox costs against the direct, locked Get (see
// bench/); it fails with ErrStopped when the loop is not running.
func (s *Store) AskGet(ctx context.Context, key string) (Entry, error) {
	r, err := ask(ctx, s, func(reply chan<- getResponse) message { return getRequest{Key: key, Reply: reply} })
	if err != nil {
		return Entry{}, err
	}
	return r.Entry, r.Err
}

// AskStats asks the loop for a stats snapshot.
func (s *Store) AskStats(ctx context.Context) (Stats, error) {
	return ask(ctx, s, func(reply chan<- Stats) message { return statsRequest{Reply: reply} })
}

// AskSweep has the loop sweep expired entries now and returns how many it
// removed.
func (s *Store) AskSweep(ctx context.Context) (int, error) {
	return ask(ctx, s, func(reply chan<- int) message { return sweepRequest{Reply: reply} })
}

// sweep removes expired entries from every shard and returns how many; it
// also removes the tombstones whose time is up.
func (s *Store) sweep() int {
	n := 0
	now := s.clock.Now().UnixNano()
	for i := range s.shards {
		n += s.shards[i].sweep(s.clock)
		s.shards[i].reap(now)
	}
	return n
}
