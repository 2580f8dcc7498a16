package node

import (
	"os"
	"time"
)

// The feed's pace. Under load a node would send a message of changes per
// client batch it serves, and every other node of the cluster receives each
// one: about a sixth of the cluster's CPU per write (BENCHMARKS.md,
// "writes"). Two things cut it:
//
//   - after each message, the publisher rests feedLinger before it sends
//     the next: a change made while the node is quiet leaves at once, and
//     under load the changes of feedLinger go as one message. A change is
//     therefore announced at most feedLinger after it was queued (before
//     its write was acknowledged): the bound this adds to the wake of a
//     blocking query on another node and to `roost watch`;
//   - with an embedded server, a message nobody but this node's own
//     subscription would receive (a node alone, no `roost watch`) is not
//     sent: the server would drop it.

// feedLinger is the least time between two messages of changes from one node.
const feedLinger = 2 * time.Millisecond

// pace sets the feed's linger and, with an embedded server, how it counts
// its audience.
func (f *feed) pace(n *Node) {
	f.linger = feedLinger
	if s := os.Getenv("ROOST_FEED_LINGER"); s != "" { // EXPERIMENT: remove
		f.linger, _ = time.ParseDuration(s)
	}
	if os.Getenv("ROOST_NOFEED") != "" { // EXPERIMENT: remove
		f.audience = func() int { return 0 }
		return
	}
	if os.Getenv("ROOST_FEED_NOGATE") != "" { // EXPERIMENT: remove
		return
	}
	if n.bus.Embedded() {
		subject := f.subject
		f.audience = func() int {
			return n.bus.Interest(subject) - 1 // this node's own subscription (no echo: it hears nothing)
		}
	}
}

// rest waits out the linger after a message; false: the feed stops.
func (f *feed) rest() bool {
	if f.linger <= 0 {
		return true
	}
	t := time.NewTimer(f.linger)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-f.stop:
		return false
	}
}
