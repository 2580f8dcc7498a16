package client

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
	"github.com/vmihailenco/msgpack/v5"
)

// The near cache's end of the change feed: one goroutine reads the feed's
// changes and its beacons through one channel, so in the order the server
// delivered them (a node publishes its beacon after the changes it covers,
// on the same connection), and moves each partition's sequence state
// (nearseq.go), dropping entries as the verdicts say.

// nearFeedBuffer is how many feed messages may wait for the goroutine; more
// are dropped by nats.go, which the goroutine then sees (Dropped) and treats
// as a reconnect.
const nearFeedBuffer = 8192

// startNear starts the near cache's feed goroutine; it ends with c.life.
func (c *Client) startNear() {
	n := c.near
	msgs := make(chan *nats.Msg, nearFeedBuffer)
	var subs []*nats.Subscription
	unsubscribe := func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		subs = nil
	}
	subscribe := func() bool {
		for _, subject := range []string{c.subj.Changes(), c.subj.ChangeHeads()} {
			sub, err := c.nc.ChanSubscribe(subject, msgs)
			if err != nil {
				unsubscribe()
				return false
			}
			subs = append(subs, sub)
		}
		return c.nc.Flush() == nil
	}
	if !subscribe() {
		// Without the feed nothing is ever synced: the near cache serves
		// nothing, and every Get asks the cluster.
		close(n.done)
		return
	}
	status := c.nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CONNECTED)
	go func() {
		defer close(n.done)
		defer c.nc.RemoveStatusListener(status)
		defer func() { unsubscribe() }()
		n.learnPartitions(c.life, c.fetchTable, c.cfg.timeout)
		var dropped int
		for {
			select {
			case <-c.life.Done():
				return
			case s := <-status:
				if s != nats.CONNECTED { // whatever is published until we are back is lost
					n.reconnected()
				}
			case m := <-msgs:
				if d := droppedOf(subs); d != dropped { // nats.go dropped messages: as good as a reconnect
					dropped = d
					n.reconnected()
				}
				n.onFeed(m, c.subj)
			case cut := <-n.cut: // tests: the feed's messages are lost at the server while cut
				unsubscribe()
				_ = c.nc.Flush()
				if !cut.on {
					subscribe()
					dropped = 0
				}
				close(cut.done)
			}
		}
	}()
}

// nearCut asks the feed goroutine to cut the feed (unsubscribe, so that the
// server drops its messages for this client, telling it nothing) or to
// restore it; done is closed once that holds.
type nearCut struct {
	on   bool
	done chan struct{}
}

// droppedOf sums the messages nats.go dropped for subs (a full channel).
func droppedOf(subs []*nats.Subscription) int {
	total := 0
	for _, s := range subs {
		if d, err := s.Dropped(); err == nil {
			total += d
		}
	}
	return total
}

// learnPartitions asks for the partition table until it has P, or ctx ends.
// The feed's messages read before then are skipped: nothing is synced, so
// nothing is served or kept.
func (n *nearCache) learnPartitions(ctx context.Context, fetch func(context.Context) ([]byte, error), timeout time.Duration) {
	for retry := time.Duration(0); ; retry = min(max(2*retry, 100*time.Millisecond), 2*time.Second) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		rctx, cancel := context.WithTimeout(ctx, timeout)
		data, err := fetch(rctx)
		cancel()
		var tr tableReply
		if err == nil && json.Unmarshal(data, &tr) == nil && tr.Partitions > 0 {
			n.setPartitions(tr.Partitions)
			return
		}
	}
}

// onFeed takes one message of the feed: changes or a beacon.
func (n *nearCache) onFeed(m *nats.Msg, subj wire.Subjects) {
	ps := n.parts.Load()
	if ps == nil {
		return
	}
	parts := *ps
	now := n.now()
	if m.Subject == subj.ChangeHeads() {
		var hb wire.FeedHeads
		if msgpack.Unmarshal(m.Data, &hb) != nil || len(hb.Heads)%3 != 0 {
			return
		}
		window := nearLiveBeacons * time.Duration(max(hb.Every, 1)) * time.Millisecond
		for i := 0; i+2 < len(hb.Heads); i += 3 {
			p := int(hb.Heads[i])
			if p >= len(parts) {
				continue
			}
			st, v := stepHeads(parts[p].st, hb.Heads[i+1], hb.Heads[i+2])
			n.apply(&parts[p], st, v, now+int64(window))
		}
		return
	}
	window := int64(nearLiveBeacons * time.Duration(wire.FeedHeadsEvery) * time.Millisecond)
	// A message that does not decode is a stranger's: what came before its
	// fault still counts.
	_ = wire.EachFeedChange(m.Data, func(ch wire.FeedChange) {
		n.changed(ch.Key, ch.Version) // whatever the sequence says, the key changed
		if ch.Seq == 0 || ch.P < 0 || ch.P >= len(parts) {
			return
		}
		st, v := stepChange(parts[ch.P].st, ch.Term, ch.Seq)
		n.apply(&parts[ch.P], st, v, now+window)
	})
}

// apply moves a partition to st after a step's verdict v: its entries are
// dropped (a new epoch) when v says so, and its feed is live until
// liveUntil when v shows it reaching us.
func (n *nearCache) apply(part *nearPart, st seqState, v seqVerdict, liveUntil int64) {
	part.st = st
	e := part.epoch.Load()
	switch {
	case v.drops():
		part.epoch.Store((e>>1+1)<<1 | 1) // a new generation, synced on the new baseline
		n.drops.Add(1)
	case v == seqSynced:
		part.epoch.Store(e | 1)
	}
	if v.live() {
		part.liveUntil.Store(max(part.liveUntil.Load(), liveUntil))
	}
}

// reconnected drops every partition's entries and baseline: what the feed
// carried while the client was away is lost.
func (n *nearCache) reconnected() {
	ps := n.parts.Load()
	if ps == nil {
		return
	}
	for i := range *ps {
		part := &(*ps)[i]
		part.st = stepReconnect(part.st)
		part.epoch.Store((part.epoch.Load()>>1 + 1) << 1) // a new generation, not synced
		part.liveUntil.Store(0)
	}
	n.losses.Add(1)
}

// setCut cuts the feed (on) or restores it, for tests: while cut, the
// client is not subscribed, so the server drops the feed's messages for it
// and nothing tells the near cache, as with a network that loses them.
func (n *nearCache) setCut(on bool) {
	c := nearCut{on: on, done: make(chan struct{})}
	select {
	case n.cut <- c:
		<-c.done
	case <-n.done:
	}
}
