package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/roostkv/roost/bus/wire"
)

// SetItem is one write of an MSet.
type SetItem struct {
	Key     string
	Value   []byte
	Options []WriteOption // as for Set: TTL, Flags, IfVersion, Ack
}

// MGet reads keys and returns one Item per key, in order. A key that is
// missing is not an error: its Item has only Key set and Found() false.
//
// Keys go in one message per primary (see WithRouting), or in several of at
// most WithMaxBatch keys each, sent concurrently (at most WithMaxInFlight at
// a time to each node). If a message fails
// as a whole (a whole-request error, timeout, Close), MGet returns that error.
// Otherwise, if some keys failed (say ErrNotReady), it returns every item it
// read and a *BatchError whose Errors[i] is the error of keys[i].
func (c *Client) MGet(ctx context.Context, keys ...string) ([]Item, error) {
	ops := make([]wire.Request, len(keys))
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, fmt.Errorf("MGet key %d: %w", i, err)
		}
		ops[i] = wire.Request{Op: wire.OpGet, Key: k}
	}
	results, err := c.runChunks(ctx, ops, nil, true)
	if err != nil {
		return nil, err
	}
	items := make([]Item, len(keys))
	var errs []error
	for i := range results {
		r := &results[i]
		if replyFull(&ops[i], r) { // the reply was full: this key alone fits
			if *r, err = c.single(ctx, ops[i], ""); err != nil {
				return nil, err
			}
		}
		switch r.Code {
		case wire.CodeOK:
			items[i] = itemOf(keys[i], r)
		case wire.CodeNotFound:
			items[i] = Item{Key: keys[i]}
		default:
			items[i] = Item{Key: keys[i]}
			errs = setErr(errs, len(keys), i, resultErr(keys[i], r))
		}
	}
	if c.near != nil {
		c.nearObserve(ops, results)
	}
	if errs != nil {
		return items, &BatchError{Errors: errs}
	}
	return items, nil
}

// MSet writes items and returns their new versions, in the same order.
// Writes of one key are applied in the order given.
//
// Items go to their keys' primaries (see WithRouting), to each in as few
// messages as WithMaxBatch, the payload limit and changes of ack mode
// between consecutive items allow, sent one after the other; messages to
// different nodes go concurrently. If a message fails as a whole, no further
// message starts and MSet returns the versions of the items written and that
// error; the others are 0. Otherwise, if some items failed (say
// ErrCASMismatch), it returns a *BatchError whose Errors[i] is the error of
// items[i], whose version is 0.
func (c *Client) MSet(ctx context.Context, items ...SetItem) ([]uint64, error) {
	ops := make([]wire.Request, len(items))
	acks := make([]string, len(items))
	for i, it := range items {
		req, ack, err := c.setRequest(it.Key, it.Value, it.Options)
		if err != nil {
			return nil, fmt.Errorf("MSet item %d: %w", i, err)
		}
		ops[i], acks[i] = req, ack
	}
	results, err := c.runChunks(ctx, ops, acks, false)
	if c.near != nil {
		c.nearObserve(ops, results)
	}
	versions := make([]uint64, len(items))
	for i := range results {
		if results[i].Code == wire.CodeOK {
			versions[i] = results[i].Version
		}
	}
	if err != nil {
		return versions, err
	}
	if errs := opErrs(ops, results); errs != nil {
		return versions, &BatchError{Errors: errs}
	}
	return versions, nil
}

// MDelete removes keys with the client's default ack mode.
// Absent keys are not an error. Messages and errors are as for MSet.
func (c *Client) MDelete(ctx context.Context, keys ...string) error {
	ops := make([]wire.Request, len(keys))
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return fmt.Errorf("MDelete key %d: %w", i, err)
		}
		ops[i] = wire.Request{Op: wire.OpDel, Key: k}
	}
	results, err := c.runChunks(ctx, ops, nil, false)
	if c.near != nil {
		c.nearObserve(ops, results)
	}
	if err != nil {
		return err
	}
	if errs := opErrs(ops, results); errs != nil {
		return &BatchError{Errors: errs}
	}
	return nil
}

// opErrs returns one error per op, or nil when every op succeeded.
func opErrs(ops []wire.Request, results []wire.Result) []error {
	var errs []error
	for i := range results {
		errs = setErr(errs, len(ops), i, resultErr(ops[i].Key, &results[i]))
	}
	return errs
}

// setErr records err at i in errs (of length n, made on the first error).
func setErr(errs []error, n, i int, err error) []error {
	if err == nil {
		return errs
	}
	if errs == nil {
		errs = make([]error, n)
	}
	errs[i] = err
	return errs
}

// runChunks sends ops as batch messages and returns their results. acks[i]
// is the ack mode of ops[i]; nil means the client's default for all. Ops are
// grouped by destination (their key's primary, per one snapshot of the
// routes), and messages to different destinations go concurrently. With
// parallel, messages to one destination go concurrently too (at most
// WithMaxInFlight at a time each), and any failure fails the call at once.
// Otherwise messages to one destination go in order, and after a failure no
// further message starts: the results of the messages that succeeded come
// back with the error, the others stay zero.
func (c *Client) runChunks(ctx context.Context, ops []wire.Request, acks []string, parallel bool) ([]wire.Result, error) {
	results := make([]wire.Result, len(ops))
	if len(ops) == 0 {
		return results, nil
	}
	lanes := plan(ops, acks, c.dests(ops), c.cfg.maxBatch, c.maxBatchBytes())
	one := func(ctx context.Context, m message) error {
		part := make([]wire.Request, len(m.idx))
		for j, i := range m.idx {
			part[j] = ops[i]
		}
		ack := c.cfg.ack
		if acks != nil {
			ack = acks[m.idx[0]]
		}
		ctx, cancel := c.callCtx(ctx)
		defer cancel()
		res, err := c.batch(ctx, m.dest, part, ack)
		if err != nil {
			return err
		}
		for j, i := range m.idx {
			results[i] = res[j]
		}
		return nil
	}
	if len(lanes) == 1 && (!parallel || len(lanes[0]) == 1) {
		for _, m := range lanes[0] {
			if err := one(ctx, m); err != nil {
				return results, err
			}
		}
		return results, nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		failed   = make(chan struct{}) // closed on the first failure
	)
	fail := func(err error) {
		once.Do(func() {
			firstErr = err
			close(failed)
			if parallel {
				cancel()
			}
		})
	}
	for _, lane := range lanes {
		wg.Go(func() {
			if !parallel {
				for _, m := range lane {
					select {
					case <-failed:
						return
					default:
					}
					if err := one(ctx, m); err != nil {
						fail(err)
						return
					}
				}
				return
			}
			var inner sync.WaitGroup
			defer inner.Wait()
			slots := make(chan struct{}, c.cfg.maxInFlight)
			for _, m := range lane {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					return
				}
				inner.Go(func() {
					defer func() { <-slots }()
					if err := one(ctx, m); err != nil {
						fail(err)
					}
				})
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctxErr(ctx, c.subj.Batch())
	}
	return results, firstErr
}

// dests returns the destination of each op, per one snapshot of the routes.
func (c *Client) dests(ops []wire.Request) []string {
	dests := make([]string, len(ops))
	if c.r == nil {
		for i := range dests {
			dests[i] = c.generic
		}
		return dests
	}
	rt := c.r.routes()
	for i := range ops {
		dests[i] = rt.destOf(ops[i].Key)
	}
	return dests
}

// message is one batch message of a multi-key call: the indexes of its
// ops, in order, and where it goes.
type message struct {
	dest string
	idx  []int
}

// plan groups ops by destination (dests[i] is ops[i]'s), in the order each
// destination first appears, keeping the ops' order within each group, and
// cuts each group into messages of at most maxOps ops and maxBytes of
// estimated size (an op larger than that goes alone), starting a new one
// wherever the ack mode changes. acks may be nil (one mode for all). It
// returns one lane of messages per destination.
func plan(ops []wire.Request, acks []string, dests []string, maxOps, maxBytes int) [][]message {
	var (
		groups [][]int        // op indexes per destination
		at     map[string]int // destination -> its group
	)
	for i, d := range dests {
		g, ok := at[d]
		if !ok {
			if at == nil {
				at = map[string]int{}
			}
			g = len(groups)
			at[d] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	lanes := make([][]message, len(groups))
	for g, idx := range groups {
		lo, bytes := 0, 0
		for j, i := range idx {
			size := opSize(&ops[i])
			if j > lo && (j-lo == maxOps || bytes+size > maxBytes || (acks != nil && acks[i] != acks[idx[lo]])) {
				lanes[g] = append(lanes[g], message{dests[i], idx[lo:j:j]})
				lo, bytes = j, 0
			}
			bytes += size
		}
		lanes[g] = append(lanes[g], message{dests[idx[0]], idx[lo:]})
	}
	return lanes
}
