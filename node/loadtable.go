package node

import (
	"time"

	"github.com/roostkv/roost/actors/store"
)

// loadTable is the bookkeeping of read-through loads at a key's primary
// (load.go), with no I/O, lock or clock inside: the time comes in as now,
// and the caller holds a lock around every call. It keeps
//
//   - the loads in flight, one per key (single-flight: every get that misses
//     the key meanwhile waits for the same load);
//   - negative entries: keys whose loader answered 404, answered 404 without
//     asking again until their time is up;
//   - refresh-ahead schedules: keys loaded with Roost-Refresh, reloaded in
//     the background by the first read after that age.
//
// A set or delete of a key forgets its negative entry and its schedule.
type loadTable struct {
	negativeTTL time.Duration // how long a loader's 404 is remembered; 0 = not at all

	flights  map[string]*flight
	negative map[string]time.Time     // key → when its negative entry ends
	refresh  map[string]refreshPolicy // key → when a read reloads it
}

// maxRefreshSchedules bounds the refresh-ahead schedules a node keeps: past
// it, a newly loaded key is served without refresh-ahead (it is loaded again
// once it expires). maxNegative bounds the negative entries likewise.
const (
	maxRefreshSchedules = 100_000
	maxNegative         = 100_000
)

// flight is one load of a key, and what its waiters are answered. done is
// closed once entry and err are set; they do not change afterwards.
type flight struct {
	done    chan struct{}
	refresh bool        // a refresh-ahead reload: the key still has its value
	version uint64      // refresh: the version it replaces (the reload's CAS)
	waiters int         // gets that joined after the one that started it
	entry   store.Entry // the value stored, when err is nil
	err     error       // 404 (loader said none, or nobody listens), 503 (timeout, loader error), or a store error
}

// refreshPolicy is a loaded key's refresh-ahead schedule.
type refreshPolicy struct {
	due     time.Time // the first read from then on reloads it
	every   time.Duration
	expires time.Time // the loaded value's expiry (zero = none): after it the schedule is moot
}

// loadOutcome is how a load ended, for finish.
type loadOutcome uint8

const (
	loadedValue  loadOutcome = iota // the loader answered a value, now stored
	loadNotFound                    // the loader answered 404
	loadNoLoader                    // nobody answered: a plain miss, nothing remembered
	loadFailed                      // timeout, loader error, or the store refused the value
	loadSkipped                     // the key had a value by the time the load began: nothing asked
)

// missAction is what a get that missed the store does.
type missAction uint8

const (
	missPlain    missAction = iota // a plain 404: no loader and no load in flight
	missNegative                   // 404 from a negative entry: the loader said so recently
	missJoin                       // wait for the load in flight
	missStart                      // start the load (the returned flight) and wait for it
)

func newLoadTable(negativeTTL time.Duration) *loadTable {
	return &loadTable{
		negativeTTL: negativeTTL,
		flights:     map[string]*flight{},
		negative:    map[string]time.Time{},
		refresh:     map[string]refreshPolicy{},
	}
}

// size is how many keys the table knows of; 0 means a miss has nothing to
// look up here (the caller's fast path).
func (t *loadTable) size() int { return len(t.flights) + len(t.negative) + len(t.refresh) }

// miss decides what a get of key that missed the store does; listening says
// whether a loader listens for key. A start returns the new flight.
func (t *loadTable) miss(key string, now time.Time, listening bool) (missAction, *flight) {
	if until, ok := t.negative[key]; ok {
		if now.Before(until) {
			return missNegative, nil
		}
		delete(t.negative, key)
	}
	if f := t.flights[key]; f != nil {
		f.waiters++
		return missJoin, f
	}
	if !listening {
		return missPlain, nil
	}
	delete(t.refresh, key) // a miss: whatever was scheduled is gone with the value
	f := &flight{done: make(chan struct{})}
	t.flights[key] = f
	return missStart, f
}

// hit reports the refresh-ahead reload a read of key at version, found in
// the store, starts: nil unless key was loaded with Roost-Refresh, its
// refresh is due, and no load of it is in flight.
func (t *loadTable) hit(key string, version uint64, now time.Time) *flight {
	pol, ok := t.refresh[key]
	if !ok || now.Before(pol.due) || t.flights[key] != nil {
		return nil
	}
	if !pol.expires.IsZero() && !now.Before(pol.expires) {
		delete(t.refresh, key)
		return nil
	}
	f := &flight{done: make(chan struct{}), refresh: true, version: version}
	t.flights[key] = f
	return f
}

// finish records how f, the flight of key, ended: a 404 becomes a negative
// entry (with negativeTTL), a value loaded with a refresh period gets a
// schedule; then f leaves the table. It does not close f.done: the caller
// does, once f's result is set.
func (t *loadTable) finish(key string, f *flight, out loadOutcome, every time.Duration, expires, now time.Time) {
	if t.flights[key] == f {
		delete(t.flights, key)
	}
	switch out {
	case loadNotFound:
		if t.negativeTTL > 0 && len(t.negative) < maxNegative {
			t.negative[key] = now.Add(t.negativeTTL)
		}
	case loadedValue:
		if every > 0 && (len(t.refresh) < maxRefreshSchedules || f.refresh) {
			t.refresh[key] = refreshPolicy{due: now.Add(every), every: every, expires: expires}
		} else {
			delete(t.refresh, key)
		}
	case loadFailed:
		if f.refresh {
			// Keep serving the value; the next read after every tries again.
			if pol, ok := t.refresh[key]; ok {
				pol.due = now.Add(pol.every)
				t.refresh[key] = pol
			}
		}
	}
}

// forget drops what the table knows of key when a set or delete of it
// runs: its negative entry and its refresh schedule. A load in flight
// stays: it stores its value only if the key is still absent.
func (t *loadTable) forget(key string) {
	delete(t.negative, key)
	delete(t.refresh, key)
}

// prune drops the negative entries and schedules that ended before now.
func (t *loadTable) prune(now time.Time) {
	for k, until := range t.negative {
		if !now.Before(until) {
			delete(t.negative, k)
		}
	}
	for k, pol := range t.refresh {
		if !pol.expires.IsZero() && !now.Before(pol.expires) {
			delete(t.refresh, k)
		}
	}
}
