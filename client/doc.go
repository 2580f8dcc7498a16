// Package client is the Go client of Roost. It speaks the binary msgpack API
// of docs/PROTOCOL.md over NATS request-reply: batches of get/set/delete on
// each partition primary's "<prefix>.n.<node id>.batch" (or on
// "<prefix>.bin.batch", which any node serves), prefix scans on
// "<prefix>.bin.scan", and the node status on "<prefix>.admin.status".
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
// messages: each node's calls wait in a queue of their own, and one sender
// sends whatever waits as one BatchRequest, at most WithMaxBatch operations
// and one ack mode per message. A call made while its node has no message
// in flight leaves at once, so a lone caller sees no added latency; calls
// pile up only while their node is busy, and leave together when it
// answers. A node gets more messages in flight (WithMaxInFlight) only when
// a full batch waits or it has answered nothing for a couple of
// milliseconds. A caller whose context ends gets ctx.Err() at once and its
// result is dropped; a call not yet sent is never sent. Calls from different
// goroutines have no order; one goroutine's calls are applied in the order
// it makes them. WithBatching(false) makes every call a request of its own.
//
// The values a batch reply carries (Get, MGet) are not copied one by one:
// each Item's Value is a slice of the reply (of at most 64 KiB; a larger
// reply's values are copied), its capacity ending at its length. A Value
// is its caller's to change or append to without touching any other, but
// keeping it keeps its whole reply in memory; keep a copy of a small value
// held for long among many dropped.
//
// # Routing
//
// A client learns the cluster's partition table ("<prefix>.admin.table") when
// it is made, and sends each operation straight to its key's primary, saving
// the hop a node makes to forward what it does not lead. The batcher sends
// one message per primary; MGet, MSet and MDelete split their keys by
// primary the same way and message the primaries concurrently. The table is
// fetched again every WithTableRefresh (2 s by default), and at once when a
// node stops answering: a request its subject had no responders for is
// retried once on "<prefix>.bin.batch", and that node is routed around for a
// refresh interval even if tables fetched meanwhile still list it (a killed
// node takes its peers seconds to notice). Routing never changes results: a
// node that gets keys it does not lead (a stale table) forwards them, and
// without a table (a single node, or no table reply) everything goes to
// "<prefix>.bin.batch". WithRouting(false) turns routing off.
//
// # Near cache
//
// WithNearCache(maxBytes, ttl) keeps the values this client read (or wrote)
// in its own process and answers Get from them without a message, while it
// knows them current: it subscribes to the change feed
// ("<prefix>.sys.changes", and the nodes' beacon on
// "<prefix>.sys.changes.heads"), removes a key's entry when the feed
// announces a change of it, and drops a whole partition's entries on a gap
// in the partition's (term, seq), a term change or a reconnect
// (docs/PROTOCOL.md, "Change feed"). A value it serves is never older than
// ttl, nor older than one the client was already answered for that key.
// NearCacheStats reports hits, misses, invalidations and drops.
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
