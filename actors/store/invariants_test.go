package store

import (
	"fmt"
	"testing"
	"time"
)

// checkInvariants verifies every shard's internal consistency: queues, index,
// slab, byte accounting, TTL count and the budget.
func checkInvariants(t *testing.T, s *Store) {
	t.Helper()
	for n := range s.shards {
		sh := &s.shards[n]
		sh.mu.Lock()
		err := sh.check()
		sh.mu.Unlock()
		if err != nil {
			t.Fatalf("shard %d: %v", n, err)
		}
	}
}

func (sh *shard) check() error {
	seen := map[uint32]bool{}
	var bytes int64
	walk := func(q *fifo, id uint8) error {
		var n int
		var b int64
		prev := uint32(0)
		for i := q.head; i != 0; i = sh.sl.at(i).next {
			e := sh.sl.at(i)
			if e.queue != id {
				return fmt.Errorf("entry %q in queue %d says queue %d", e.key, id, e.queue)
			}
			if e.prev != prev {
				return fmt.Errorf("entry %q: prev %d, want %d", e.key, e.prev, prev)
			}
			if seen[i] {
				return fmt.Errorf("entry %q queued twice", e.key)
			}
			seen[i] = true
			n++
			b += e.size()
			prev = i
		}
		if q.tail != prev {
			return fmt.Errorf("queue %d: tail %d, want %d", id, q.tail, prev)
		}
		if n != q.n || b != q.bytes {
			return fmt.Errorf("queue %d: counts n=%d bytes=%d, walked n=%d bytes=%d", id, q.n, q.bytes, n, b)
		}
		bytes += b
		return nil
	}
	if err := walk(&sh.pol.small, queueSmall); err != nil {
		return err
	}
	if err := walk(&sh.pol.main, queueMain); err != nil {
		return err
	}
	if err := walk(&sh.tombs, queueTomb); err != nil {
		return err
	}
	if len(seen) != sh.sl.used || sh.idx.n != sh.sl.used {
		return fmt.Errorf("queued %d, slab used %d, index %d", len(seen), sh.sl.used, sh.idx.n)
	}
	if bytes != sh.bytes {
		return fmt.Errorf("accounted %d bytes, queues hold %d", sh.bytes, bytes)
	}
	if sh.budget > 0 && sh.bytes > sh.budget {
		return fmt.Errorf("%d bytes over a budget of %d", sh.bytes, sh.budget)
	}
	ttl := 0
	for i, end := uint32(1), sh.sl.end(); i < end; i++ {
		e := sh.sl.at(i)
		if e.queue == queueNone {
			if seen[i] {
				return fmt.Errorf("free slot %d is queued", i)
			}
			continue
		}
		if !seen[i] {
			return fmt.Errorf("entry %q in no queue", e.key)
		}
		if got := sh.idx.find(&sh.sl, e.hash, e.key); got != i {
			return fmt.Errorf("index finds %q at %d, want %d", e.key, got, i)
		}
		if e.version == 0 || e.created == 0 || e.created > e.version {
			return fmt.Errorf("entry %q: version %d created %d", e.key, e.version, e.created)
		}
		if e.tomb() {
			if e.value != "" || e.flags != 0 || e.expires == 0 {
				return fmt.Errorf("tombstone %q: value %d bytes, flags %d, removal time %d", e.key, len(e.value), e.flags, e.expires)
			}
			continue
		}
		if e.expires != 0 {
			ttl++
		}
	}
	if ttl != sh.ttlKeys {
		return fmt.Errorf("ttlKeys %d, counted %d", sh.ttlKeys, ttl)
	}
	return nil
}

// manualTicker replaces a store's sweep ticker with a channel the test drives.
func manualTicker(s *Store) chan time.Time {
	c := make(chan time.Time)
	s.newTicker = func(time.Duration) (<-chan time.Time, func()) { return c, func() {} }
	return c
}
