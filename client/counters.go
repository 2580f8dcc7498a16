package client

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/roostkv/roost/bus/wire"
)

// Counters and sliding TTLs (docs/PROTOCOL.md, OpIncr and OpTouch).

// Incr adds delta to the counter key and returns its new value and
// version. An absent key counts as 0; TTL(d) among opts applies only when
// the increment creates the counter, and Ack(wire.AckAll) makes it
// linearizable per key. A key that holds anything but a signed decimal
// integer fails with an *Error of Code 409 (errors.Is(err, ErrCASMismatch)
// holds: the key is not in the state an increment needs), as does
// a sum that would overflow an int64; the value is then unchanged. An
// increment whose answer is lost (a timeout, a node that died) may or may
// not have counted: it is never sent twice by the client.
func (c *Client) Incr(ctx context.Context, key string, delta int64, opts ...WriteOption) (int64, uint64, error) {
	if err := checkKey(key); err != nil {
		return 0, 0, err
	}
	o := c.writeOpts(opts)
	if o.ttl < 0 {
		return 0, 0, &Error{Code: wire.CodeBadRequest, Message: fmt.Sprintf("negative TTL %s for key %q", o.ttl, key)}
	}
	req := wire.Request{Op: wire.OpIncr, Key: key, Value: strconv.AppendInt(nil, delta, 10), TTL: ttlMillis(o.ttl)}
	res, err := c.do(ctx, req, o.ack)
	if c.near != nil { // a write: the near cache drops its older entry (near.go)
		c.nearObserve([]wire.Request{req}, []wire.Result{res})
	}
	if err != nil {
		return 0, 0, err
	}
	if err := resultErr(key, &res); err != nil {
		return 0, 0, err
	}
	n, err := strconv.ParseInt(string(res.Value), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: incr of %q answered %q", ErrProtocol, key, res.Value)
	}
	return n, res.Version, nil
}

// Touch makes key expire ttl (> 0) from now, keeping its value and flags,
// and returns its new version. An absent key fails with ErrNotFound.
// Ack among opts is honoured; other options are ignored.
func (c *Client) Touch(ctx context.Context, key string, ttl time.Duration, opts ...WriteOption) (uint64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if ttl <= 0 {
		return 0, &Error{Code: wire.CodeBadRequest, Message: fmt.Sprintf("touch of %q needs a TTL above 0, got %s", key, ttl)}
	}
	o := c.writeOpts(opts)
	return c.write(ctx, wire.Request{Op: wire.OpTouch, Key: key, TTL: ttlMillis(ttl)}, o.ack)
}

// GetOption modifies one Get.
type GetOption func(*getOpts)

type getOpts struct {
	touch time.Duration // > 0: reset the expiry to this from now
	ack   string
}

// AndTouch makes a Get reset the key's expiry to ttl from now in the same
// call (Roost-Touch): a write at the key's primary, so the Item returned
// carries the version the touch gave the key.
func AndTouch(ttl time.Duration) GetOption { return func(o *getOpts) { o.touch = ttl } }

// getWith is a Get with options.
func (c *Client) getWith(ctx context.Context, key string, opts []GetOption) (Item, error) {
	o := getOpts{ack: c.cfg.ack}
	for _, opt := range opts {
		opt(&o)
	}
	if o.touch < 0 {
		return Item{}, &Error{Code: wire.CodeBadRequest, Message: fmt.Sprintf("negative touch TTL %s for key %q", o.touch, key)}
	}
	req := wire.Request{Op: wire.OpGet, Key: key, TTL: ttlMillis(o.touch)}
	res, err := c.do(ctx, req, o.ack)
	if c.near != nil { // a touch: never from the near cache, but its answer counts there (near.go)
		c.nearObserve([]wire.Request{req}, []wire.Result{res})
	}
	if err != nil {
		return Item{}, err
	}
	if err := resultErr(key, &res); err != nil {
		return Item{}, err
	}
	return itemOf(key, &res), nil
}
