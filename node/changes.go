package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// The change feed. Every change a node's store applies (a set, or a delete
// of a present key) is announced once on wire.Subjects.Changes by that node:
// the primary of the key's partition, since writes are applied there. Every
// node listens to the feed for two reasons:
//
//   - it wakes the blocking HTTP queries waiting on it whose key or prefix
//     the change touches (they read again; a change on this node wakes them
//     directly, without the bus);
//   - it raises its version clock above every version it hears of
//     (store.Observe), so that versions keep rising across the cluster and a
//     new primary never writes below what clients have seen.
//
// The feed has a connection of its own, opened without echo: a node does
// not hear its own announcements, so a node alone in its cluster publishes
// into a subject nobody listens to, which the server drops at once.
// `roost watch` subscribes to the same subject from outside.
//
// Changes are gathered: the writer appends its change to a buffer and a
// publisher goroutine sends what the buffer holds as one message (several
// Change maps back to back), so that under load one message carries many
// changes instead of every write costing a message to every node. A lone
// change leaves as soon as the publisher wakes; after each message the
// publisher rests feedLinger, so a node sends at most one message of
// changes per feedLinger (feed_pace.go).

// Change is one message of the change feed (msgpack, the field names in the
// tags): a key was set or deleted, taking version Version.
type Change struct {
	Key     string `msgpack:"k" json:"key"`
	Version uint64 `msgpack:"ver" json:"version"`
	Deleted bool   `msgpack:"del" json:"deleted"` // false: a set
	// Event, when set, says the key left on its own: expired or evicted
	// (--feed-expiry, feed_expiry.go); Deleted is then true.
	Event *FeedEvent `msgpack:"ev,omitempty" json:"event,omitempty"`

	// The change's log ID, when the replication log carries it (Seq > 0):
	// entry Seq of partition Partition's term Term (changes_seq.go).
	Partition int    `msgpack:"p,omitempty" json:"partition,omitempty"`
	Term      uint64 `msgpack:"t,omitempty" json:"term,omitempty"`
	Seq       uint64 `msgpack:"s,omitempty" json:"seq,omitempty"`
}

// feedMessageMax bounds the bytes of changes one message carries.
const feedMessageMax = 64 << 10

// DecodeChanges reads one message of the change feed: one or more Change
// maps back to back.
func DecodeChanges(data []byte) ([]Change, error) {
	if isEventMessage(data) {
		return decodeEvents(data) // feed_expiry.go
	}
	var out []Change
	err := eachChange(data, func(c *rawChange) {
		out = append(out, Change{Key: string(c.key), Version: c.version, Deleted: c.deleted, Partition: c.p, Term: c.term, Seq: c.seq})
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("change feed: empty message")
	}
	return out, nil
}

// eachChange calls fn with every change of a feed message in order, until
// one does not decode. Changes laid out as appendChange writes them are read
// in place; any other msgpack encoding is decoded generically.
func eachChange(data []byte, fn func(c *rawChange)) error {
	var rc rawChange
	for b := data; len(b) > 0; {
		if rest, ok := scanChange(b, &rc); ok {
			fn(&rc)
			b = rest
			continue
		}
		dec := msgpack.NewDecoder(bytes.NewReader(b))
		for {
			var c Change
			if err := dec.Decode(&c); err == io.EOF {
				return nil
			} else if err != nil {
				return fmt.Errorf("change feed: %w", err)
			}
			fn(&rawChange{key: []byte(c.Key), version: c.Version, deleted: c.Deleted, p: c.Partition, term: c.Term, seq: c.Seq})
		}
	}
	return nil
}

// appendChange encodes c as Change's msgpack map onto b, by hand: it runs on
// every write, and this way it costs no allocation.
func appendChange(b []byte, c store.Change) []byte {
	b = append(b, 0x83, 0xa1, 'k') // map of 3; "k"
	switch n := len(c.Key); {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 1<<8:
		b = append(b, 0xd9, byte(n))
	case n < 1<<16:
		b = append(b, 0xda, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdb)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
	b = append(b, c.Key...)
	b = append(b, 0xa3, 'v', 'e', 'r', 0xcf) // "ver": uint64
	b = binary.BigEndian.AppendUint64(b, c.Version)
	b = append(b, 0xa3, 'd', 'e', 'l', 0xc2) // "del": false
	if c.Deleted {
		b[len(b)-1] = 0xc3 // true
	}
	return b
}

// feed is a node's end of the change feed and its blocking queries' waiters.
type feed struct {
	nc      *nats.Conn // the feed's own connection, without echo
	subject string
	sub     *nats.Subscription
	observe func(version uint64) // raises the node's version clock
	waiters waiters

	mu   sync.Mutex
	buf  []byte // changes not published yet, encoded back to back
	cuts []int  // offsets in buf where a new message starts (feedMessageMax)

	seqFeed // the log IDs and the heads beacon (changes_seq.go)

	kick chan struct{} // buffered 1: buf has changes
	stop chan struct{} // closed by stopFeed
	done chan struct{} // closed when the publisher has ended

	primaryOf func(key string) string // names the primary of a key's partition (feed_expiry.go)

	linger atomic.Int64              // the least time between two messages of changes, a time.Duration (feed_pace.go)
	heard  func(subject string) bool // whether anyone subscribes to subject now; nil: assume so (feed_pace.go)
}

// startFeed opens the feed's connection, listens to the feed and has the
// store announce its changes there. A change is queued on the writer's
// goroutine before its reply leaves, so every blocking query waiting when a
// client saw its write acknowledged hears of it (at most once, like any core
// NATS message).
func (n *Node) startFeed() error {
	opts := []nats.Option{
		nats.Name("roost " + n.cfg.Name + " changes"),
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1),
	}
	if n.cfg.Token != "" {
		opts = append(opts, nats.Token(n.cfg.Token))
	}
	nc, err := n.bus.Connect(opts...)
	if err != nil {
		return fmt.Errorf("node: change feed: %w", err)
	}
	f := &feed{nc: nc, subject: n.subj.Changes(), observe: n.observe, primaryOf: n.primaryName,
		seqFeed: seqFeed{headsSubject: n.subj.ChangeHeads(), node: n.cfg.Name},
		kick:    make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	f.waiters.init()
	if f.pace(n) { // not a node that can never have peers (feed_pace.go)
		if f.sub, err = nc.Subscribe(f.subject, f.onMessage); err != nil {
			nc.Close()
			return fmt.Errorf("node: change feed: %w", err)
		}
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return fmt.Errorf("node: change feed: %w", err)
	}
	n.feed = f
	go f.publisher()
	n.store.Notify(f.onChange)
	n.startGoneFeed() // feed_expiry.go: with --feed-expiry
	return nil
}

// stopWaiters answers every blocking query now and every later one at once:
// the node is stopping.
func (n *Node) stopWaiters() {
	if n.feed != nil {
		n.feed.waiters.close()
	}
}

// stopFeed stops announcing changes and closes the feed's connection.
func (n *Node) stopFeed() {
	if n.feed == nil {
		return
	}
	n.store.Notify(nil)
	n.stopGoneFeed()
	n.feed.waiters.close()
	close(n.feed.stop)
	<-n.feed.done
	n.feed.nc.Close()
}

// onChange wakes the local waiters a change this node's store applied
// concerns, and queues its announcement. It runs on the writer's goroutine.
func (f *feed) onChange(c store.Change) {
	if f.sequenced.Load() {
		return // the replicator announces it, with its log ID (changes_seq.go)
	}
	f.waiters.notify(c.Key)
	f.mu.Lock()
	start := 0 // where buf's last message starts
	if k := len(f.cuts); k > 0 {
		start = f.cuts[k-1]
	}
	if len(f.buf)-start > feedMessageMax {
		f.cuts = append(f.cuts, len(f.buf))
	}
	f.buf = appendChange(f.buf, c)
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default: // the publisher is awake already
	}
}

// publisher sends the queued changes, as few messages as they fit in,
// whenever there are some; at stop, it sends what is left and ends.
func (f *feed) publisher() {
	defer close(f.done)
	var out []byte
	var cuts []int
	beacon := time.NewTicker(time.Duration(wire.FeedHeadsEvery) * time.Millisecond)
	defer beacon.Stop()
	for {
		select {
		case <-f.kick:
		case <-beacon.C: // the heads of the partitions this node leads, after the changes up to them
			out, cuts = f.publishHeads(out, cuts)
			continue
		case <-f.stop:
			f.publish(out, cuts)
			return
		}
		out, cuts = f.publish(out, cuts)
		if !f.rest() {
			f.publish(out, cuts)
			return
		}
	}
}

// publish swaps the queue with the spare buffers out and cuts, publishes
// the queued changes and returns the buffers, now spare.
func (f *feed) publish(out []byte, cuts []int) ([]byte, []int) {
	f.mu.Lock()
	out, f.buf = f.buf, out[:0]
	cuts, f.cuts = f.cuts, cuts[:0]
	f.mu.Unlock()
	if len(out) > 0 && f.heard != nil && !f.heard(f.subject) {
		return out[:0], cuts[:0] // nobody listens: the server would drop it (feed_pace.go)
	}
	from := 0
	for _, to := range append(cuts, len(out)) {
		if to > from {
			_ = f.nc.Publish(f.subject, out[from:to]) // at most once: a lost announcement delays waiters until their wait ends
		}
		from = to
	}
	if cap(out) > 4*feedMessageMax { // a burst: give the memory back
		out = nil
	}
	return out, cuts
}

// onMessage takes the changes another node announced. Every node hears
// every other node's changes, so the common case costs no allocation: the
// layout appendChange writes is read in place.
func (f *feed) onMessage(m *nats.Msg) {
	if isEventMessage(m.Data) {
		f.onEvents(m.Data) // feed_expiry.go
		return
	}
	var highest uint64
	// A message that does not decode is not ours to judge (a stranger
	// published on the subject): what came before its fault still counts.
	_ = eachChange(m.Data, func(c *rawChange) {
		highest = max(highest, c.version)
		f.waiters.notifyBytes(c.key)
	})
	if highest > 0 {
		f.observe(highest)
	}
}

// rawChange is a change as eachChange reads it in place: key points into
// the message.
type rawChange struct {
	key       []byte
	version   uint64
	deleted   bool
	p         int
	term, seq uint64 // 0: not sequenced
}

// scanChange reads the first change of b into c if it is encoded exactly as
// appendChange (or appendSeqChange) does, and returns what follows it;
// ok=false for any other encoding.
func scanChange(b []byte, c *rawChange) (rest []byte, ok bool) {
	if len(b) < 4 || b[0] != 0x83 && b[0] != 0x86 || b[1] != 0xa1 || b[2] != 'k' {
		return nil, false
	}
	sequenced := b[0] == 0x86
	var n, at int
	switch h := b[3]; {
	case h&0xe0 == 0xa0:
		n, at = int(h&0x1f), 4
	case h == 0xd9 && len(b) > 4:
		n, at = int(b[4]), 5
	case h == 0xda && len(b) > 5:
		n, at = int(binary.BigEndian.Uint16(b[4:])), 6
	case h == 0xdb && len(b) > 7:
		n, at = int(binary.BigEndian.Uint32(b[4:])), 8
	default:
		return nil, false
	}
	b = b[at:]
	if len(b) < n+4+9+5 || string(b[n:n+5]) != "\xa3ver\xcf" || string(b[n+13:n+17]) != "\xa3del" || b[n+17]&^1 != 0xc2 {
		return nil, false
	}
	*c = rawChange{key: b[:n], version: binary.BigEndian.Uint64(b[n+5:]), deleted: b[n+17] == 0xc3}
	rest = b[n+18:]
	if sequenced {
		return scanSeq(rest, c)
	}
	return rest, true
}

// waiters are the blocking queries waiting for a change, by key or prefix.
// Its methods may be called by any number of goroutines.
type waiters struct {
	count atomic.Int64 // registered waiters, so that writers skip the lock when there are none
	// The first bytes of the keys and prefixes waited on, one bit each, and
	// whether a waiter waits on every key (the empty prefix): a change no
	// waiter can concern costs no lock. Roost's own waiters (the catalog
	// cache's, the runtime config's) wait on reserved prefixes, which begin
	// with a NUL byte that no user key has (reserved.go): so every node
	// has waiters, and user writes still pass them by.
	firsts   [4]atomic.Uint64
	everyKey atomic.Bool

	mu       sync.Mutex
	keys     map[string]map[*waiter]struct{} // waiting on one key
	prefixes map[*waiter]struct{}            // waiting on a prefix
	byFirst  [256]int32                      // waiters by the first byte of their key or prefix
	empty    int32                           // waiters on the empty prefix
	done     chan struct{}                   // closed by close
	closed   bool
}

// waiter is one blocking query.
type waiter struct {
	key    string
	prefix bool          // key is a prefix
	wake   chan struct{} // holds a token when a change came since the query last read
	gone   atomic.Bool   // a key it waits on expired or was evicted at its primary: answer now (feed_expiry.go)
}

func (ws *waiters) init() {
	ws.keys = map[string]map[*waiter]struct{}{}
	ws.prefixes = map[*waiter]struct{}{}
	ws.done = make(chan struct{})
}

// add registers a waiter for key (or, with prefix, the keys under it). Call
// it before reading, so that no change after the read goes unheard.
func (ws *waiters) add(key string, prefix bool) *waiter {
	w := &waiter{key: key, prefix: prefix, wake: make(chan struct{}, 1)}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.index(key, 1)
	if prefix {
		ws.prefixes[w] = struct{}{}
	} else {
		set := ws.keys[key]
		if set == nil {
			set = map[*waiter]struct{}{}
			ws.keys[key] = set
		}
		set[w] = struct{}{}
	}
	ws.count.Add(1)
	return w
}

// remove unregisters w.
func (ws *waiters) remove(w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.index(w.key, -1)
	if w.prefix {
		delete(ws.prefixes, w)
	} else if set := ws.keys[w.key]; set != nil {
		delete(set, w)
		if len(set) == 0 {
			delete(ws.keys, w.key)
		}
	}
	ws.count.Add(-1)
}

// index counts a waiter on key (a key or a prefix) in or out (d = 1 or
// -1) of the first-byte filter. Call it under mu, before the waiter reads:
// a change applied before a notify that the filter turned away was applied
// before the waiter's bit was set, so before its read.
func (ws *waiters) index(key string, d int32) {
	if key == "" {
		ws.empty += d
		ws.everyKey.Store(ws.empty > 0)
		return
	}
	b := key[0]
	ws.byFirst[b] += d
	bit := uint64(1) << (b & 63)
	switch word := &ws.firsts[b>>6]; {
	case ws.byFirst[b] > 0 && word.Load()&bit == 0:
		word.Or(bit)
	case ws.byFirst[b] == 0:
		word.And(^bit)
	}
}

// concerns reports whether a waiter may wait on key or a prefix of it,
// without a lock. False means that none does.
func (ws *waiters) concerns(first byte) bool {
	return ws.firsts[first>>6].Load()&(uint64(1)<<(first&63)) != 0 || ws.everyKey.Load()
}

// notifyBytes is notify for a key read in place from a feed message: it
// makes the key's string only for a key that may concern a waiter.
func (ws *waiters) notifyBytes(key []byte) {
	if ws.count.Load() == 0 || len(key) == 0 || !ws.concerns(key[0]) {
		return
	}
	ws.notify(string(key))
}

// notify wakes the waiters of key and of every prefix of it.
func (ws *waiters) notify(key string) {
	if ws.count.Load() == 0 || key != "" && !ws.concerns(key[0]) {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for w := range ws.keys[key] {
		w.signal()
	}
	for w := range ws.prefixes {
		if strings.HasPrefix(key, w.key) {
			w.signal()
		}
	}
}

// stopping is closed once the node stops: waiters answer at once.
func (ws *waiters) stopping() <-chan struct{} { return ws.done }

func (ws *waiters) close() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if !ws.closed {
		ws.closed = true
		close(ws.done)
	}
}

func (w *waiter) signal() {
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}
