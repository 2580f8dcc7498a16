package store

import (
	"fmt"
	"strings"
)

// Apply writes a record made elsewhere (by another node, or read from a
// snapshot), last writer wins: r takes effect only if r.Version is above the
// version the store holds for r.Key, that of its live entry or of its
// tombstone (an expired entry is absent). A live record is stored exactly as
// given, Created, Version and Expires included: no version is minted. A
// Deleted record makes a present key a tombstone at r.Version, or leaves a
// tombstone for an absent key, so that an older set arriving later is
// refused; it lasts Config.TombstoneTTL from now, is accounted and is
// evicted like a delete's, and none is kept when the config keeps no
// tombstones.
//
// applied is false when r was refused as not newer, and when it had nothing
// to store: a live record whose Expires has passed (it still removes the
// older entry it overwrote, as its expiry did where it was written), or a
// delete of an absent key when no tombstones are kept.
//
// Apply first observes r.Version, so that every later local write of any key
// gets a higher version. It never calls the Notify callback: a replicated
// change is announced by the node that made it. A set it applies counts in
// Stats.Sets, a delete of a present key in Stats.Deletes, as Set and Delete
// count theirs. It fails with ErrInvalid (empty key, key over MaxKeyLen,
// Version 0, a live record's Created 0 or above Version), or ErrTooLarge as
// Set does. The store copies r.Value: the caller may reuse it.
func (s *Store) Apply(r Record) (applied bool, err error) {
	s.vc.observe(r.Version)
	switch {
	case r.Key == "":
		return false, fmt.Errorf("%w: empty key", ErrInvalid)
	case len(r.Key) > MaxKeyLen:
		return false, fmt.Errorf("%w: key of %d bytes, the limit is %d", ErrInvalid, len(r.Key), MaxKeyLen)
	case r.Version == 0:
		return false, fmt.Errorf("%w: version 0", ErrInvalid)
	}
	size := int64(len(r.Key)) + EntryOverhead
	if r.Deleted {
		r.Value = nil
	} else {
		switch {
		case r.Created == 0 || r.Created > r.Version:
			return false, fmt.Errorf("%w: created at %d, version %d", ErrInvalid, r.Created, r.Version)
		case int64(len(r.Value)) > MaxValueLen:
			return false, fmt.Errorf("%w: value of %d bytes, the limit is %d", ErrTooLarge, len(r.Value), int64(MaxValueLen))
		}
		size += int64(len(r.Value))
	}
	sh, h := s.shardOf(r.Key)
	if sh.budget > 0 && size > sh.budget {
		return false, fmt.Errorf("%w: %d bytes accounted, a shard holds %d", ErrTooLarge, size, sh.budget)
	}
	return sh.apply(h, &r, size, s.clock), nil
}

// Export returns the records of every live entry and every tombstone whose
// key matches (nil = every key): what a snapshot or a replica needs to
// rebuild them with Apply. A tombstone's record carries its Key and Version
// only. With withValues false, live records carry no Value; else their
// Value is a copy, the caller's to keep. Shards are read
// one after another, each under its lock, so the result is not one atomic
// snapshot; match runs under the lock and must be quick. Order is
// unspecified.
func (s *Store) Export(match func(key string) bool, withValues bool) []Record {
	now := s.clock.Now().UnixNano()
	var out []Record
	for i := range s.shards {
		out = s.shards[i].export(out, match, withValues, now)
	}
	return out
}

// Versions calls fn with the key, version and kind of every live entry and
// every tombstone (deleted), shard by shard, under each shard's lock: fn must
// be quick and must not call the store. key is a view of the store's
// memory, valid only during the call: clone it to keep it.
// The order is unspecified. Replication sums these into per-partition
// digests.
func (s *Store) Versions(fn func(key string, version uint64, deleted bool)) {
	now := s.clock.Now().UnixNano()
	for i := range s.shards {
		s.shards[i].versions(fn, now)
	}
}

// apply stores r, of size accounted bytes, under hash h if it is newer than
// what the shard holds for its key, and reports whether it took effect.
func (sh *shard) apply(h uint32, r *Record, size int64, clock Clock) bool {
	now := nower{clock: clock}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.live(h, r.Key, &now)
	if i != 0 && sh.sl.at(i).version >= r.Version {
		return false
	}
	switch {
	case r.Deleted:
		return sh.applyDelete(h, i, r, size, now.get())
	case r.Expires != 0 && r.Expires <= now.get(): // written, then expired: what is left is nothing
		if i != 0 {
			if !sh.sl.at(i).tomb() {
				sh.report(i, GoneExpired)
				sh.expirations++
			}
			sh.drop(i)
		}
		return false
	}
	w := write{key: r.Key, value: r.Value, flags: r.Flags, version: r.Version, created: r.Created, expires: r.Expires, size: size}
	sh.put(h, i, &w)
	return true
}

// applyDelete applies deleted record r, newer than slot i (0 = absent, else a
// live entry or a tombstone), at now; size is its tombstone's.
func (sh *shard) applyDelete(h, i uint32, r *Record, size int64, now int64) bool {
	switch {
	case i != 0 && !sh.sl.at(i).tomb(): // a present key: as Delete does
		if sh.tombTTL > 0 {
			sh.bury(i, r.Version, now)
		} else {
			sh.drop(i)
		}
		sh.deletes++
	case i != 0: // an older tombstone takes the newer delete's version and time
		sh.tombs.unlink(&sh.sl, i)
		e := sh.sl.at(i)
		e.version, e.expires = r.Version, sh.tombUntil(now)
		sh.tombs.pushHead(&sh.sl, i)
	case sh.tombTTL == 0: // an absent key, and no tombstones kept
		return false
	default: // an absent key: its tombstone still refuses older sets
		sh.makeRoom(size)
		i = sh.sl.alloc()
		e := sh.sl.at(i)
		*e = entry{version: r.Version, created: r.Version, expires: sh.tombUntil(now), hash: h}
		sh.sl.setKey(e, r.Key, nil)
		sh.idx.insert(&sh.sl, h, i) // before it is queued: growth rebuilds from queued entries
		e.queue = queueTomb
		sh.tombs.pushHead(&sh.sl, i)
		sh.bytes += size
	}
	return true
}

// export appends the records of the shard's live entries and tombstones
// whose key matches (nil = all) to out.
func (sh *shard) export(out []Record, match func(key string) bool, withValues bool, now int64) []Record {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for i, end := uint32(1), sh.sl.end(); i < end; i++ {
		e := sh.sl.at(i)
		if e.queue == queueNone || (!e.tomb() && e.expired(now)) || (match != nil && !match(sh.sl.key(e))) {
			continue
		}
		if e.tomb() {
			out = append(out, Record{Key: strings.Clone(sh.sl.key(e)), Version: e.version, Deleted: true})
			continue
		}
		r := Record{Key: strings.Clone(sh.sl.key(e)), Version: e.version, Created: e.created, Flags: sh.flags(i, e), Expires: e.expires}
		if withValues {
			r.Value = sh.sl.appendValue(nil, e)
		}
		out = append(out, r)
	}
	return out
}

// versions calls fn for each of the shard's live entries and tombstones.
func (sh *shard) versions(fn func(key string, version uint64, deleted bool), now int64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for i, end := uint32(1), sh.sl.end(); i < end; i++ {
		if e := sh.sl.at(i); e.queue != queueNone && (e.tomb() || !e.expired(now)) {
			fn(sh.sl.key(e), e.version, e.tomb())
		}
	}
}
