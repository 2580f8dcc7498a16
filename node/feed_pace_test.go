package node

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/internal/testkit"
)

// TestFeedPaces: under a steady stream of changes the publisher sends at
// most one message per linger (plus the first, at once), and every change
// arrives, in order. Without the rest after each message it sends about one
// message per change here (a change every 250 µs, the publisher idle in
// between).
func TestFeedPaces(t *testing.T) {
	srv := testkit.StartNATS(t)
	nc := testkit.Connect(t, srv.ClientURL())
	const subject = "test.feed"
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	f := &feed{nc: nc, subject: subject, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	f.linger.Store(int64(5 * time.Millisecond))
	f.waiters.init()
	go f.publisher()
	const changes = 400
	start := time.Now()
	for i := range changes {
		f.onChange(store.Change{Key: fmt.Sprintf("k%d", i), Version: uint64(i + 1)})
		time.Sleep(250 * time.Microsecond)
	}
	close(f.stop) // what is left leaves now
	<-f.done
	elapsed := time.Since(start)
	var got []Change
	messages := 0
	for len(got) < changes {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("%d of %d changes arrived: %v", len(got), changes, err)
		}
		cs, err := DecodeChanges(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, cs...)
		messages++
	}
	for i, c := range got {
		if c.Key != fmt.Sprintf("k%d", i) || c.Version != uint64(i+1) {
			t.Fatalf("change %d is %s at %d, want k%d at %d", i, c.Key, c.Version, i, i+1)
		}
	}
	if linger := time.Duration(f.linger.Load()); messages > int(elapsed/linger)+2 {
		t.Fatalf("%d changes over %s took %d messages; with a linger of %s, at most %d", changes, elapsed, messages, linger, int(elapsed/linger)+2)
	}
	t.Logf("%d changes over %s: %d messages", changes, elapsed.Round(time.Millisecond), messages)
}

// TestFeedPublishesOnlyWhenHeard: when the feed knows that nobody
// subscribes, a message of changes is not sent (the server would drop it),
// and the changes are not kept; when somebody does, or when it cannot tell
// (a node that may have peers), it is sent.
func TestFeedPublishesOnlyWhenHeard(t *testing.T) {
	srv := testkit.StartNATS(t)
	nc := testkit.Connect(t, srv.ClientURL())
	var heard atomic.Bool
	f := &feed{nc: nc, subject: "test.feed", kick: make(chan struct{}, 1), heard: func(string) bool { return heard.Load() }}
	f.waiters.init()
	sent := func() uint64 {
		before := nc.Stats().OutMsgs
		f.onChange(store.Change{Key: "k", Version: 1})
		f.publish(nil, nil)
		return nc.Stats().OutMsgs - before
	}
	for _, h := range []bool{false, true, false} {
		heard.Store(h)
		want := uint64(0)
		if h {
			want = 1
		}
		if got := sent(); got != want {
			t.Errorf("heard %v: %d messages sent, want %d", h, got, want)
		}
		if len(f.buf) != 0 {
			t.Errorf("heard %v: %d bytes of changes left queued", h, len(f.buf))
		}
	}
	f.heard = nil // cannot tell
	if got := sent(); got != 1 {
		t.Errorf("a feed that cannot tell who listens sent %d messages, want 1", got)
	}
}

// TestALoneNodeFeedsOnlySubscribers: a node that can never have peers does
// not listen to the feed and knows when someone subscribes to it, whatever
// the subject pattern; a node that may have peers listens, and sends
// whether or not anyone does.
func TestALoneNodeFeedsOnlySubscribers(t *testing.T) {
	n := startTestNode(t, 0)
	if n.feed.sub != nil || n.feed.heard == nil {
		t.Fatal("a lone node listens to its feed, or does not ask who does")
	}
	if n.feed.heard(n.subj.Changes()) || n.feed.heard(n.subj.ChangeHeads()) {
		t.Fatal("a lone node sees a subscriber to its feed before any")
	}
	for _, subject := range []string{n.subj.Changes(), "roost.sys.>", ">", "roost.*.changes"} {
		nc := testkit.Connect(t, n.ClientURL())
		if _, err := nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if !n.feed.heard(n.subj.Changes()) {
			t.Fatalf("a subscriber to %s is not seen", subject)
		}
		nc.Close()
		testkit.Eventually(t, 5*time.Second, func() error {
			if n.feed.heard(n.subj.Changes()) {
				return fmt.Errorf("the subscriber to %s left and is still seen", subject)
			}
			return nil
		})
	}

	c := startClusterNode(t, "c", nil, nil)
	if c.feed.sub == nil || c.feed.heard != nil {
		t.Fatal("a node with a cluster port does not listen to its feed, or stops sending when it hears nobody")
	}
}
