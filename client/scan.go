package client

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"

	"github.com/roostkv/roost/bus/wire"
)

// Scan returns an iterator over the live keys that start with prefix, in
// byte order, fetched a page per request (ScanResponse.More asks for the
// next page, after the last key seen). Each page has its own timeout. On an
// error the iterator yields it once, with a zero Item, and stops; breaking
// out of the loop stops fetching.
//
//	for it, err := range c.Scan(ctx, "user.") {
//		if err != nil { ... }
//		fmt.Println(it.Key)
//	}
//
// A scan is not a snapshot: keys written while it runs may or may not appear.
func (c *Client) Scan(ctx context.Context, prefix string, opts ...ScanOption) iter.Seq2[Item, error] {
	req := wire.ScanRequest{Prefix: prefix}
	for _, o := range opts {
		o(&req)
	}
	return func(yield func(Item, error) bool) {
		req := req // each range over the iterator starts afresh
		for {
			page, err := c.scanPage(ctx, &req)
			if err != nil {
				yield(Item{}, err)
				return
			}
			for _, e := range page.Entries {
				it := Item{Key: e.Key, Value: e.Value, Version: e.Version, Flags: e.Flags, Expires: unixMilli(e.Expires)}
				if c.near != nil {
					c.near.observe(e.Key, e.Version, true)
				}
				if !yield(it, nil) {
					return
				}
			}
			if !page.More {
				return
			}
			if len(page.Entries) == 0 {
				yield(Item{}, fmt.Errorf("%w: scan page with More and no entries", ErrProtocol))
				return
			}
			req.After = page.Entries[len(page.Entries)-1].Key
		}
	}
}

// ScanAll collects Scan into a slice.
func (c *Client) ScanAll(ctx context.Context, prefix string, opts ...ScanOption) ([]Item, error) {
	var items []Item
	for it, err := range c.Scan(ctx, prefix, opts...) {
		if err != nil {
			return items, err
		}
		items = append(items, it)
	}
	return items, nil
}

// Keys returns every live key that starts with prefix, in byte order.
func (c *Client) Keys(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	for it, err := range c.Scan(ctx, prefix, KeysOnly()) {
		if err != nil {
			return keys, err
		}
		keys = append(keys, it.Key)
	}
	return keys, nil
}

func (c *Client) scanPage(ctx context.Context, req *wire.ScanRequest) (*wire.ScanResponse, error) {
	data, err := wire.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	m, err := c.request(ctx, c.subj.Scan(), data)
	if err != nil {
		return nil, err
	}
	var page wire.ScanResponse
	if err := wire.Unmarshal(m.Data, &page); err != nil {
		return nil, fmt.Errorf("%w: reply on %s: %w", ErrProtocol, c.subj.Scan(), err)
	}
	return &page, nil
}

// Status returns the status of the node that answers, as the JSON it sends
// (the node defines its shape). With several nodes, any one of them answers.
func (c *Client) Status(ctx context.Context) (json.RawMessage, error) {
	return c.adminJSON(ctx, c.subj.Status())
}

// Members returns the membership view of the node that answers, as the JSON
// it sends (node.MembersReply).
func (c *Client) Members(ctx context.Context) (json.RawMessage, error) {
	return c.adminJSON(ctx, c.subj.Members())
}

// adminJSON asks an admin subject that answers JSON.
func (c *Client) adminJSON(ctx context.Context, subject string) (json.RawMessage, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	m, err := c.request(ctx, subject, nil)
	if err != nil {
		return nil, err
	}
	if !json.Valid(m.Data) {
		return nil, fmt.Errorf("%w: reply on %s is not JSON", ErrProtocol, subject)
	}
	return json.RawMessage(m.Data), nil
}
