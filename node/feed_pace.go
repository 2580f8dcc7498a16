package node

import "time"

// The feed's pace. Under load a node sent a message of changes per client
// batch it served, and every other node of the cluster received each one:
// about a sixth of the cluster's CPU per write (BENCHMARKS.md, "writes").
// Two things cut it:
//
//   - after each message, the publisher rests feedLinger before it sends
//     the next: a change made while the node is quiet leaves at once, and
//     under load the changes of feedLinger go as one message. A change is
//     therefore published at most feedLinger after it was queued (before
//     its write was acknowledged): the bound this adds to the wake of a
//     blocking query on another node, to `roost watch` and to a near
//     cache's invalidation; the catalog caches of other nodes see a
//     service change as late;
//   - a node that can never have peers (an embedded server without a
//     cluster port or a route to join) does not listen to the feed, since
//     nobody else can publish there, and sends nothing while nobody
//     subscribes to it (no `roost watch`, no near cache): its server would
//     drop the message. The server is asked for every message; a
//     subscriber gets every change published once its subscription is in
//     the server, as from any NATS publisher.

// feedLinger is the least time between two messages of changes from one node.
const feedLinger = 2 * time.Millisecond

// pace sets the feed's linger and, on a node that can never have peers,
// how it learns whether anyone listens; listen reports whether the node
// listens to the feed.
func (f *feed) pace(n *Node) (listen bool) {
	f.linger.Store(int64(feedLinger))
	if n.cfg.NATSURL != "" || n.cfg.ClusterListen != "" || len(n.cfg.Join) > 0 { // it may have peers, now or later
		return true
	}
	f.heard = func(subject string) bool { return n.bus.Interest(subject) > 0 }
	return false
}

// rest waits out the linger after a message; false: the feed stops.
func (f *feed) rest() bool {
	linger := time.Duration(f.linger.Load())
	if linger <= 0 {
		return true
	}
	t := time.NewTimer(linger)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-f.stop:
		return false
	}
}
