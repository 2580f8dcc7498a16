package client

import (
	"context"
	"fmt"
	"sync"

	"github.com/roostkv/roost/bus"
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
// Keys go in one message, or in several of at most WithMaxBatch keys each,
// sent concurrently (at most WithMaxInFlight at a time). If a message fails
// as a whole (a whole-request error, timeout, Close), MGet returns that error.
// Otherwise, if some keys failed (say ErrNotReady), it returns every item it
// read and a *BatchError whose Errors[i] is the error of keys[i].
func (c *Client) MGet(ctx context.Context, keys ...string) ([]Item, error) {
	ops := make([]bus.Request, len(keys))
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, fmt.Errorf("MGet key %d: %w", i, err)
		}
		ops[i] = bus.Request{Op: bus.OpGet, Key: k}
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
		case bus.CodeOK:
			items[i] = itemOf(keys[i], r)
		case bus.CodeNotFound:
			items[i] = Item{Key: keys[i]}
		default:
			items[i] = Item{Key: keys[i]}
			errs = setErr(errs, len(keys), i, resultErr(keys[i], r))
		}
	}
	if errs != nil {
		return items, &BatchError{Errors: errs}
	}
	return items, nil
}

// MSet writes items in order and returns their new versions, in the same
// order.
//
// Items go in as few messages as WithMaxBatch, the payload limit and changes
// of ack mode between consecutive items allow, sent one after the other. If
// a message fails as a whole, MSet returns the versions of the items written
// before it and that error. Otherwise, if some items failed (say
// ErrCASMismatch), it returns a *BatchError whose Errors[i] is the error of
// items[i], whose version is 0.
func (c *Client) MSet(ctx context.Context, items ...SetItem) ([]uint64, error) {
	ops := make([]bus.Request, len(items))
	acks := make([]string, len(items))
	for i, it := range items {
		req, ack, err := c.setRequest(it.Key, it.Value, it.Options)
		if err != nil {
			return nil, fmt.Errorf("MSet item %d: %w", i, err)
		}
		ops[i], acks[i] = req, ack
	}
	results, err := c.runChunks(ctx, ops, acks, false)
	versions := make([]uint64, len(items))
	for i := range results {
		if results[i].Code == bus.CodeOK {
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

// MDelete removes keys, in order, with the client's default ack mode.
// Absent keys are not an error. Messages and errors are as for MSet.
func (c *Client) MDelete(ctx context.Context, keys ...string) error {
	ops := make([]bus.Request, len(keys))
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return fmt.Errorf("MDelete key %d: %w", i, err)
		}
		ops[i] = bus.Request{Op: bus.OpDel, Key: k}
	}
	results, err := c.runChunks(ctx, ops, nil, false)
	if err != nil {
		return err
	}
	if errs := opErrs(ops, results); errs != nil {
		return &BatchError{Errors: errs}
	}
	return nil
}

// opErrs returns one error per op, or nil when every op succeeded.
func opErrs(ops []bus.Request, results []bus.Result) []error {
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
// is the ack mode of ops[i]; nil means the client's default for all. With
// parallel, messages go concurrently and any failure fails the call;
// otherwise they go in order and, on a failure, the results before it come
// back with the error (the rest stay zero).
func (c *Client) runChunks(ctx context.Context, ops []bus.Request, acks []string, parallel bool) ([]bus.Result, error) {
	results := make([]bus.Result, len(ops))
	if len(ops) == 0 {
		return results, nil
	}
	ackOf := func(i int) string {
		if acks == nil {
			return c.cfg.ack
		}
		return acks[i]
	}
	spans := chunk(ops, acks, c.cfg.maxBatch, c.maxBatchBytes())
	one := func(ctx context.Context, s span) error {
		ctx, cancel := c.callCtx(ctx)
		defer cancel()
		res, err := c.batch(ctx, ops[s.lo:s.hi], ackOf(s.lo))
		if err != nil {
			return err
		}
		copy(results[s.lo:s.hi], res)
		return nil
	}
	if !parallel || len(spans) == 1 {
		for _, s := range spans {
			if err := one(ctx, s); err != nil {
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
		slots    = make(chan struct{}, c.cfg.maxInFlight)
	)
	for _, s := range spans {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := one(ctx, s); err != nil {
				once.Do(func() { firstErr = err; cancel() })
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctxErr(ctx, c.subj.Batch())
	}
	return results, firstErr
}

// span is ops[lo:hi], one message.
type span struct{ lo, hi int }

// chunk splits ops into messages of at most maxOps ops and maxBytes of
// estimated size (an op larger than that goes alone), starting a new one
// wherever the ack mode changes. acks may be nil (one mode for all).
func chunk(ops []bus.Request, acks []string, maxOps, maxBytes int) []span {
	var spans []span
	lo, bytes := 0, 0
	for i := range ops {
		size := opSize(&ops[i])
		if i > lo && (i-lo == maxOps || bytes+size > maxBytes || (acks != nil && acks[i] != acks[lo])) {
			spans = append(spans, span{lo, i})
			lo, bytes = i, 0
		}
		bytes += size
	}
	return append(spans, span{lo, len(ops)})
}
