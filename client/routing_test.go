package client_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/partition"
)

// routedSetup starts a fake node whose table spreads 31 partitions over a,
// b and c (partition p led by the (p mod 3)-th), serving the node subjects
// of a and b only: c is gone.
func routedSetup(t *testing.T, opts ...client.Option) (*client.Client, *fakeNode) {
	t.Helper()
	srv := startServer(t, "")
	node := startNode(t, srv.ClientURL(), "")
	node.serveTable(t, routedPartitions, []string{"a", "b", "c"}, "a", "b")
	c, err := client.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c, node
}

const routedPartitions = 31

// leader returns the member routedSetup's table makes primary of key.
func leader(key string) string {
	return []string{"a", "b", "c"}[partition.Of(key, routedPartitions)%3]
}

// checkRouted fails unless every batch on a node subject holds only keys
// that node leads, and every batch on the generic subject only keys of c.
// It returns how many operations each subject received.
func checkRouted(t *testing.T, node *fakeNode) map[string]int {
	t.Helper()
	ops := map[string]int{}
	for _, m := range []string{"a", "b", "c", ""} {
		subject, want := node.subj.NodeBatch("id-"+m), m
		if m == "" {
			subject, want = node.subj.Batch(), "c"
		}
		for _, b := range node.received(subject) {
			for _, op := range b.Ops {
				if leader(op.Key) != want {
					t.Errorf("key %q of %s arrived on %s", op.Key, leader(op.Key), subject)
				}
			}
			ops[subject] += len(b.Ops)
		}
	}
	return ops
}

// TestRoutingToPrimaries: single-key calls, batched or not, and multi-key
// calls go straight to their key's primary, one message per primary; a gone
// primary's keys fall back to the generic subject.
func TestRoutingToPrimaries(t *testing.T) {
	for _, mode := range batchingModes {
		t.Run(mode.name, func(t *testing.T) {
			c, node := routedSetup(t, client.WithBatching(mode.on))
			ctx := context.Background()
			const workers, rounds = 32, 10
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for r := range rounds {
						key := fmt.Sprintf("w%d.r%d", w, r)
						ver, err := c.Set(ctx, key, []byte(key))
						if err != nil {
							t.Errorf("Set %s: %v", key, err)
							return
						}
						if it, err := c.Get(ctx, key); err != nil || string(it.Value) != key || it.Version != ver {
							t.Errorf("Get %s = %+v, %v; want version %d", key, it, err, ver)
							return
						}
					}
				})
			}
			wg.Wait()
			ops := checkRouted(t, node)
			t.Logf("operations by subject: %v", ops)
			for _, m := range []string{"a", "b"} {
				if ops[node.subj.NodeBatch("id-"+m)] == 0 {
					t.Errorf("nothing went straight to %s", m)
				}
			}
			if ops[node.subj.Batch()] == 0 {
				t.Error("nothing of the gone node's keys reached the generic subject")
			}
			if got := ops[node.subj.NodeBatch("id-a")] + ops[node.subj.NodeBatch("id-b")] + ops[node.subj.Batch()]; got != 2*workers*rounds {
				t.Errorf("%d operations arrived, want %d", got, 2*workers*rounds)
			}
			// The gone node asked for a fresh table at once.
			checkFor(t, 5*time.Second, func() error {
				if n := node.tables.Load(); n < 2 {
					return fmt.Errorf("%d table requests, want the first and a refresh", n)
				}
				return nil
			})
		})
	}
}

func TestMultiKeyCallsSplitByPrimary(t *testing.T) {
	c, node := routedSetup(t)
	ctx := context.Background()
	var items []client.SetItem
	var keys []string
	for i := range 60 {
		k := fmt.Sprint("m", i)
		items = append(items, client.SetItem{Key: k, Value: []byte(k)})
		keys = append(keys, k)
	}
	if _, err := c.MSet(ctx, items...); err != nil {
		t.Fatalf("MSet: %v", err)
	}
	got, err := c.MGet(ctx, keys...)
	if err != nil {
		t.Fatalf("MGet: %v", err)
	}
	for i, it := range got {
		if it.Key != keys[i] || string(it.Value) != keys[i] {
			t.Errorf("MGet[%d] = %+v", i, it)
		}
	}
	if err := c.MDelete(ctx, keys...); err != nil {
		t.Fatalf("MDelete: %v", err)
	}
	checkRouted(t, node)
	// One message per primary and call: a and b on their subjects; c's keys
	// on the generic one, after a failed try on c's subject for the first call.
	for _, m := range []string{"a", "b"} {
		if n := len(node.received(node.subj.NodeBatch("id-" + m))); n != 3 {
			t.Errorf("%s received %d messages for MSet, MGet and MDelete, want 3", m, n)
		}
	}
	if n := len(node.received(node.subj.Batch())); n != 3 {
		t.Errorf("the generic subject received %d messages, want 3 (c's keys)", n)
	}
}

func TestRoutingOff(t *testing.T) {
	for _, opt := range []client.Option{client.WithRouting(false), client.WithTableRefresh(0)} {
		c, node := routedSetup(t, opt)
		ctx := context.Background()
		for i := range 30 {
			if _, err := c.Set(ctx, fmt.Sprint("k", i), nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.MGet(ctx, "k1", "k2", "k3", "k4"); err != nil {
			t.Fatal(err)
		}
		if n := node.tables.Load(); n != 0 {
			t.Errorf("routing off, yet %d table requests", n)
		}
		if n := len(node.received(node.subj.Batch())); n != 31 {
			t.Errorf("routing off: %d messages on the generic subject, want 31", n)
		}
	}
}

// TestTableRefresh: the client picks up a new table by itself, and a node
// that comes back is routed to again.
func TestTableRefresh(t *testing.T) {
	c, node := routedSetup(t, client.WithTableRefresh(20*time.Millisecond))
	ctx := context.Background()
	var kc string // a key of c, the gone node
	for i := 0; kc == ""; i++ {
		if k := fmt.Sprint("k", i); leader(k) == "c" {
			kc = k
		}
	}
	if _, err := c.Set(ctx, kc, []byte("v")); err != nil {
		t.Fatal(err)
	}
	node.serveTable(t, routedPartitions, []string{"a", "b", "c"}, "c")
	cSubject := node.subj.NodeBatch("id-c")
	checkFor(t, 5*time.Second, func() error {
		if it, err := c.Get(ctx, kc); err != nil || string(it.Value) != "v" {
			return fmt.Errorf("Get %s = %+v, %v", kc, it, err)
		}
		if len(node.received(cSubject)) == 0 {
			return fmt.Errorf("c's keys still do not go to %s", cSubject)
		}
		return nil
	})
	checkRouted(t, node)
}

// TestSlowNodeDoesNotHoldUpOthers: with the only slot taken by a message a
// node sits on, calls for another node still leave at once.
func TestSlowNodeDoesNotHoldUpOthers(t *testing.T) {
	c, node := routedSetup(t, client.WithMaxInFlight(1))
	var ka, kb string
	for i := 0; ka == "" || kb == ""; i++ {
		switch k := fmt.Sprint("k", i); leader(k) {
		case "a":
			ka = k
		case "b":
			kb = k
		}
	}
	release := node.hold(ka)
	defer release()
	slow := make(chan error, 1)
	go func() { _, err := c.Get(context.Background(), ka); slow <- err }()
	waitArrived(t, node, ka)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := c.Set(ctx, kb, []byte("v")); err != nil {
		t.Fatalf("Set of b's key while a sits on a message: %v", err)
	}
	release()
	if err := waitDone(t, slow, 5*time.Second, "held Get"); err == nil || !errors.Is(err, client.ErrNotFound) {
		t.Errorf("held Get: %v, want ErrNotFound", err)
	}
}

// TestInFlightToGoneNode: calls in flight to a node that leaves the table
// (dead in the cluster's view) are not waited for until their deadline: a
// write fails with ErrNotReady, its outcome unknown; a read is sent again
// on the generic subject. A call in flight to a node still listed waits for
// its answer.
func TestInFlightToGoneNode(t *testing.T) {
	for _, mode := range batchingModes {
		t.Run(mode.name, func(t *testing.T) {
			c, node := routedSetup(t, client.WithBatching(mode.on), client.WithTableRefresh(20*time.Millisecond), client.WithTimeout(time.Minute))
			ctx := context.Background()
			var ka, kbW, kbR string
			for i := 0; ka == "" || kbW == "" || kbR == ""; i++ {
				switch k := fmt.Sprint(mode.name, i); {
				case leader(k) == "a" && ka == "":
					ka = k
				case leader(k) == "b" && kbW == "":
					kbW = k
				case leader(k) == "b" && kbR == "":
					kbR = k
				}
			}
			if _, err := c.Set(ctx, kbR, []byte("r")); err != nil {
				t.Fatal(err)
			}
			release := map[string]func(){}
			for _, k := range []string{ka, kbW, kbR} {
				release[k] = node.hold(k)
				defer release[k]()
			}
			write, read, other := make(chan error, 1), make(chan error, 1), make(chan error, 1)
			go func() { _, err := c.Set(ctx, kbW, []byte("w")); write <- err }()
			waitArrived(t, node, kbW)
			go func() {
				it, err := c.Get(ctx, kbR)
				if err == nil && string(it.Value) != "r" {
					err = fmt.Errorf("read %q", it.Value)
				}
				read <- err
			}()
			waitArrived(t, node, kbR)
			go func() { _, err := c.Set(ctx, ka, []byte("a")); other <- err }()
			waitArrived(t, node, ka)

			// b dies: the cluster's table no longer lists it.
			node.serveTable(t, routedPartitions, []string{"a", "c"})
			if err := waitDone(t, write, 5*time.Second, "write in flight to b"); !errors.Is(err, client.ErrNotReady) {
				t.Errorf("write in flight to the gone node: %v, want ErrNotReady", err)
			}
			// The read went again, to the generic subject, where it waits
			// for its key like any other.
			waitArrived(t, node, kbR)
			if got := len(node.received(node.subj.Batch())); got == 0 {
				t.Error("the read was not sent again on the generic subject")
			}
			for _, ch := range []chan error{read, other} {
				select {
				case err := <-ch:
					t.Fatalf("a call returned before its node answered: %v", err)
				default:
				}
			}
			release[ka]()
			release[kbR]()
			if err := waitDone(t, read, 5*time.Second, "read sent again"); err != nil {
				t.Errorf("read in flight to the gone node: %v", err)
			}
			if err := waitDone(t, other, 5*time.Second, "write to a live node"); err != nil {
				t.Errorf("write in flight to a live node: %v", err)
			}
		})
	}
}
