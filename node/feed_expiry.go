package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/partition"
	"github.com/vmihailenco/msgpack/v5"
)

// Expiry and eviction events on the change feed (--feed-expiry). A key's
// TTL runs out on every copy independently, so only the primary of its
// partition announces an expiry: one announcement per key, not R. An
// eviction is one node's own decision, about its own copy: the evicting
// node announces it with its name. Events travel as messages of their own
// on the feed's subject, Change maps with Deleted set and an Event
// ({"why": "expired"|"evicted", "node": name}); they are rare, so they are
// encoded by msgpack itself, never in the hand-laid layout of the changes.
//
// A blocking query waiting on a key (or a prefix) that expired, or was
// evicted by the key's primary, answers at once: the key's index does not
// rise when it leaves without a write (no tombstone, no version), so it
// could not wake on the index alone.

// FeedEvent says why a key left without a write.
type FeedEvent struct {
	Reason string `msgpack:"why" json:"reason"`          // "expired" or "evicted"
	Node   string `msgpack:"node" json:"node,omitempty"` // the node that announced it: the primary (expired) or the evicting node
}

// goneQueueMax bounds the events waiting to be announced; past it they are
// dropped (counted), as any feed message may be lost.
const goneQueueMax = 1 << 14

// goneFeed queues the store's expirations and evictions for announcement.
type goneFeed struct {
	mu      sync.Mutex
	queue   []store.Gone
	dropped atomic.Uint64 // events over goneQueueMax since the last publish, not announced (logged)
	kick    chan struct{} // buffered 1: the queue has events
	stop    chan struct{}
	done    chan struct{}
}

// startGoneFeed subscribes to the store's expirations and evictions, with
// --feed-expiry.
func (n *Node) startGoneFeed() {
	if !n.cfg.FeedExpiry {
		return
	}
	g := &goneFeed{kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	n.gone.Store(g)
	go n.announceGone(g)
	n.store.NotifyGone(g.add)
}

// stopGoneFeed stops the announcements; what is queued is sent first.
func (n *Node) stopGoneFeed() {
	g := n.gone.Load()
	if g == nil {
		return
	}
	n.store.NotifyGone(nil)
	close(g.stop)
	<-g.done
}

// add queues one event. It runs under a store shard's lock: quick, no
// store call.
func (g *goneFeed) add(e store.Gone) {
	g.mu.Lock()
	if len(g.queue) < goneQueueMax {
		g.queue = append(g.queue, e)
	} else {
		g.dropped.Add(1)
	}
	g.mu.Unlock()
	select {
	case g.kick <- struct{}{}:
	default:
	}
}

// announceGone publishes the queued events until stopped.
func (n *Node) announceGone(g *goneFeed) {
	defer close(g.done)
	var spare []store.Gone
	for {
		select {
		case <-g.kick:
		case <-g.stop:
			n.publishGone(g, spare)
			return
		}
		spare = n.publishGone(g, spare)
	}
}

// publishGone announces what the queue holds, as few messages as fit, and
// wakes this node's waiters; it returns the emptied queue for reuse.
func (n *Node) publishGone(g *goneFeed, spare []store.Gone) []store.Gone {
	g.mu.Lock()
	events := g.queue
	g.queue = spare[:0]
	g.mu.Unlock()
	if d := g.dropped.Swap(0); d > 0 {
		n.log.Warn("--feed-expiry: events dropped, more came than the feed could take", "dropped", d, "limit", goneQueueMax)
	}
	var buf []byte
	for _, e := range events {
		primary := n.leadsKey(e.Key)
		if e.Reason == store.GoneExpired && !primary {
			continue // the primary announces it
		}
		c := Change{Key: e.Key, Version: e.Version, Deleted: true, Event: &FeedEvent{Reason: e.Reason.String(), Node: n.cfg.Name}}
		if primary {
			n.feed.waiters.notifyGone(e.Key)
		}
		b, err := msgpack.Marshal(&c)
		if err != nil {
			continue
		}
		if len(buf)+len(b) > feedMessageMax && len(buf) > 0 {
			_ = n.feed.nc.Publish(n.feed.subject, buf)
			buf = nil
		}
		buf = append(buf, b...)
	}
	if len(buf) > 0 {
		_ = n.feed.nc.Publish(n.feed.subject, buf)
	}
	clear(events)
	return events
}

// leadsKey reports whether this node is the primary of key's partition in
// its view (or holds the only copy, with no cluster view).
func (n *Node) leadsKey(key string) bool {
	if n.leaving.Load() {
		return false
	}
	r := n.routing.Load()
	return r == nil || r.primary(partition.Of(key, n.cfg.Partitions))
}

// isEventMessage reports whether a feed message holds events rather than
// changes: its first change is not in the hand-laid layout of changes.
func isEventMessage(data []byte) bool {
	var rc rawChange
	_, ok := scanChange(data, &rc)
	return !ok && bytes.Contains(data, []byte("\xa2ev"))
}

// decodeEvents decodes a feed message of msgpack Change maps back to back.
func decodeEvents(data []byte) ([]Change, error) {
	var out []Change
	dec := msgpack.NewDecoder(bytes.NewReader(data))
	for {
		var c Change
		if err := dec.Decode(&c); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return out, fmt.Errorf("change feed: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("change feed: empty message")
	}
	return out, nil
}

// onEvents takes the events another node announced: every waiter of their
// keys reads again, and answers at once when the key left at its primary.
func (f *feed) onEvents(data []byte) {
	cs, _ := decodeEvents(data) // what came before a fault still counts
	var highest uint64
	for _, c := range cs {
		highest = max(highest, c.Version)
		if c.Event != nil && (c.Event.Reason == store.GoneExpired.String() || f.primaryOf != nil && f.primaryOf(c.Key) == c.Event.Node) {
			f.waiters.notifyGone(c.Key)
		} else {
			f.waiters.notify(c.Key)
		}
	}
	if highest > 0 {
		f.observe(highest)
	}
}

// notifyGone wakes the waiters of key and of every prefix of it, marked to
// answer now.
func (ws *waiters) notifyGone(key string) {
	if ws.count.Load() == 0 || key != "" && !ws.concerns(key[0]) {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for w := range ws.keys[key] {
		w.gone.Store(true)
		w.signal()
	}
	for w := range ws.prefixes {
		if len(key) >= len(w.key) && key[:len(w.key)] == w.key {
			w.gone.Store(true)
			w.signal()
		}
	}
}

// primaryName is the name of the primary of key's partition in this node's
// view, "" when unknown.
func (n *Node) primaryName(key string) string {
	r := n.routing.Load()
	if r == nil {
		return n.cfg.Name
	}
	return r.table.Primary(partition.Of(key, n.cfg.Partitions))
}
