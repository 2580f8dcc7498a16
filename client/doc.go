// Package client is the Go client of Roost. It speaks the binary msgpack API
// of docs/PROTOCOL.md over NATS request-reply: batches of get/set/delete on
// "<prefix>.bin.batch", prefix scans on "<prefix>.bin.scan", and the node
// status on "<prefix>.admin.status".
//
//	c, err := client.Connect("nats://127.0.0.1:4222", client.WithToken(token))
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//
//	ver, err := c.Set(ctx, "user.42", []byte("Ada"), client.TTL(10*time.Minute))
//	it, err := c.Get(ctx, "user.42")                              // ErrNotFound when missing
//	ver, err = c.CompareAndSwap(ctx, "user.42", []byte("Bob"), ver) // ErrCASMismatch when raced
//	items, err := c.MGet(ctx, "a", "b", "c")                       // missing keys: !items[i].Found()
//	for it, err := range c.Scan(ctx, "user.") { ... }
//
// # Batching
//
// Concurrent single-key calls (Get, Set, Delete, CompareAndSwap) share
// messages: a batcher sends whatever calls are waiting as one BatchRequest,
// at most WithMaxBatch operations, one ack mode per message, keeping at most
// WithMaxInFlight messages awaiting a reply. A call made while a slot is free
// leaves at once, so a lone caller sees no added latency; calls pile up only
// while every slot is busy. A caller whose context ends gets ctx.Err() at
// once and its result is dropped; a call not yet sent is never sent. Calls
// from different goroutines have no order; one goroutine's calls are applied
// in the order it makes them. WithBatching(false) makes every call a
// request of its own.
//
// # Errors
//
// A node's refusal is an *Error with the status code (per operation, or for
// the whole request from the Nats-Service-Error-Code header); errors.Is
// matches it with ErrBadRequest, ErrNotFound, ErrCASMismatch, ErrTooLarge,
// ErrNotReady, ErrInternal or ErrUnauthorized by its code. No reply in time
// is ErrTimeout (also context.DeadlineExceeded); no node listening is
// ErrNotReady; a closed client is ErrClosed. MGet, MSet and MDelete report
// per-operation failures as a *BatchError indexed like their arguments.
package client
