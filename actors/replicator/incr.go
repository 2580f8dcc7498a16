package replicator

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/roostkv/roost/actors/store"
)

// Counters and sliding TTLs: writes whose new entry depends on the key's
// current one. The primary's core computes them in the partition's serial
// step, where no other write of the partition can come between the read
// and the write, and logs the result as an ordinary set: the replicas, log
// fetches, snapshots and pushes carry a set entry like any other, so
// increments are exactly as durable as sets (ack=all included) and never
// applied twice.

// IncrRequest adds Delta to the signed decimal integer key holds. An absent
// key counts as 0 and is created with TTL (0 = no expiry); an existing key
// keeps its expiry and flags.
type IncrRequest struct {
	Key   string
	Delta int64
	TTL   time.Duration // on create only; 0 = none
}

// TouchRequest gives key's live entry a new expiry, TTL from now (0 = none),
// keeping its value and flags: a new version of the key.
type TouchRequest struct {
	Key string
	TTL time.Duration
}

// Errors of an incr.
var (
	// ErrNotNumber: the key holds something other than a decimal integer.
	ErrNotNumber = errors.New("replicator: the value is not a decimal integer")
	// ErrOverflow: the sum does not fit in a signed 64-bit integer.
	ErrOverflow = errors.New("replicator: the counter would overflow a signed 64-bit integer")
)

// incrAttempts bounds the read-then-CAS rounds of an incr or a touch: the
// core is the key's only writer, so a CAS fails only when the entry
// expired or was evicted between the read and the write, and the next
// round sees it absent.
const incrAttempts = 3

// ParseCounter reads a counter's value: a signed decimal integer, ASCII
// spaces around it allowed.
func ParseCounter(v []byte) (int64, error) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, fmt.Errorf("%w: %q is out of the range of a signed 64-bit integer", ErrNotNumber, clip(v))
		}
		return 0, fmt.Errorf("%w: %q", ErrNotNumber, clip(v))
	}
	return n, nil
}

// AddCounter returns n+delta, or ErrOverflow.
func AddCounter(n, delta int64) (int64, error) {
	if delta > 0 && n > math.MaxInt64-delta || delta < 0 && n < math.MinInt64-delta {
		return 0, fmt.Errorf("%w: %d%+d", ErrOverflow, n, delta)
	}
	return n + delta, nil
}

// clip shortens a value quoted in an error.
func clip(v []byte) []byte {
	if len(v) > 32 {
		return append(v[:32:32], "..."...)
	}
	return v
}

// EntryStore is what an incr or a touch needs of a store: *store.Store is
// one, for a node that runs them without a replicator.
type EntryStore interface {
	Get(key string) (store.Entry, error)
	Set(store.SetRequest) (store.Entry, error)
}

// applyIncr runs an incr in the partition's step.
func (c *core) applyIncr(r IncrRequest) (store.Record, OpResult) {
	e, err := Incr(c.st, r)
	if err != nil {
		return store.Record{}, OpResult{Err: err}
	}
	return recordOf(e), OpResult{Entry: e}
}

// applyTouch runs a touch in the partition's step.
func (c *core) applyTouch(r TouchRequest) (store.Record, OpResult) {
	e, err := Touch(c.st, r)
	if err != nil {
		return store.Record{}, OpResult{Err: err}
	}
	return recordOf(e), OpResult{Entry: e}
}

// Incr computes and writes an increment in st: a set of the new value,
// conditional on the version read (or on absence). It is atomic only
// where st has no other writer of the key meanwhile: the primary's core,
// or a node with no replicator.
func Incr(st EntryStore, r IncrRequest) (store.Entry, error) {
	var err error
	for range incrAttempts {
		cur, gerr := st.Get(r.Key)
		req := store.SetRequest{Key: r.Key, CheckCAS: true}
		var n int64
		switch {
		case errors.Is(gerr, store.ErrNotFound):
			req.TTL = r.TTL // CAS 0: only if still absent
		case gerr != nil:
			return store.Entry{}, gerr
		default:
			if n, err = ParseCounter(cur.Value); err != nil {
				return store.Entry{}, err
			}
			req.CAS, req.Flags, req.KeepTTL = cur.Version, cur.Flags, true
		}
		if n, err = AddCounter(n, r.Delta); err != nil {
			return store.Entry{}, err
		}
		req.Value = strconv.AppendInt(nil, n, 10)
		e, serr := st.Set(req)
		if errors.Is(serr, store.ErrCASMismatch) {
			err = serr
			continue // expired or evicted meanwhile: read again
		}
		if serr != nil {
			return store.Entry{}, serr
		}
		return e, nil
	}
	return store.Entry{}, err
}

// Touch writes key's live entry in st again with a new expiry; atomic as
// Incr is.
func Touch(st EntryStore, r TouchRequest) (store.Entry, error) {
	var err error
	for range incrAttempts {
		cur, gerr := st.Get(r.Key)
		if gerr != nil {
			return store.Entry{}, gerr // store.ErrNotFound: nothing to touch
		}
		e, serr := st.Set(store.SetRequest{Key: r.Key, Value: cur.Value, Flags: cur.Flags, TTL: r.TTL, CheckCAS: true, CAS: cur.Version})
		if errors.Is(serr, store.ErrCASMismatch) {
			err = serr
			continue
		}
		if serr != nil {
			return store.Entry{}, serr
		}
		return e, nil
	}
	return store.Entry{}, err
}

// recordOf is the log record of a set that wrote e.
func recordOf(e store.Entry) store.Record {
	return store.Record{Key: e.Key, Value: e.Value, Version: e.Version, Created: e.Created, Flags: e.Flags, Expires: e.Expires}
}

// count is how many of its mutations op carries.
func (op Op) count() int {
	n := 0
	if op.Set != nil {
		n++
	}
	if op.Del != nil {
		n++
	}
	if op.Incr != nil {
		n++
	}
	if op.Touch != nil {
		n++
	}
	return n
}
