package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/roostkv/roost/node"
)

// Expiry and eviction events on the change feed (--feed-expiry).

// TestFeedExpiry: with --feed-expiry, a key's expiry is announced once, by
// its primary (not by the other copy, which expires too), to roost watch
// on the other node, and wakes a consul blocking query made through the
// other node long before its wait ends.
func TestFeedExpiry(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 2, func(_ int, c *node.Config) {
		c.FeedExpiry = true
		c.SweepInterval = 50 * time.Millisecond
		c.HeartbeatInterval = 500 * time.Millisecond // the primary must not move under load: it is the announcer
	})
	t0 := time.Now()
	defer func() { t.Logf("took %s", time.Since(t0)) }()
	key := keyLedBy(t, nodes[0], "ex/k", nodes[1].Name())
	watch := startWatch(t, "ex/*", "--server", nodes[0].ClientURL())
	nc := connect(t, nodes[0])
	probe := keyLedBy(t, nodes[0], "ex/probe", nodes[1].Name())
	eventually(t, 10*time.Second, func() error { // the route knows the watch's interest once a line shows
		wantCode(t, "set probe", request(t, nc, "roost.set."+probe, []byte("p")), 200)
		select {
		case <-watch.lines:
			return nil
		case <-time.After(100 * time.Millisecond):
			return fmt.Errorf("no line yet")
		}
	})
	t.Logf("probe seen after %s", time.Since(t0))
	wantCode(t, "clear probe", request(t, nc, "roost.del."+probe, nil), 200)
	for l := watch.next(t); !strings.HasPrefix(l, "del "); l = watch.next(t) {
	}

	// The query must wait before the key expires: one that comes after
	// finds no index above its own (an expiry does not raise it) and waits
	// out its wait. So the TTL leaves room for a starved machine, and the
	// test checks that the query waited in time.
	const ttl = 3 * time.Second
	set := request(t, nc, "roost.set."+key, []byte("v"), "Roost-TTL", ttl.String())
	setAt := time.Now()
	wantCode(t, "set with ttl", set, 200)
	kv := consulKV(t, nodes[0], "")
	_, qm := mustGet(t, kv, key, nil)
	start := time.Now()
	blocked := make(chan error, 1)
	go func() {
		p, _, err := kv.Get(key, &api.QueryOptions{WaitIndex: qm.LastIndex, WaitTime: 20 * time.Second})
		if err == nil && p != nil {
			err = fmt.Errorf("the blocking query answered %q, want the key gone", p.Value)
		}
		blocked <- err
	}()
	eventually(t, ttl, func() error {
		if n := nodes[0].BlockingQueries(); n != 1 {
			return fmt.Errorf("%d blocking queries on %s, want 1", n, nodes[0].Name())
		}
		return nil
	})
	if waiting := time.Since(setAt); waiting >= ttl {
		t.Fatalf("the blocking query waited only %s after the set, past the key's TTL of %s", waiting, ttl)
	}
	if l := watch.next(t); l != fmt.Sprintf("set %s version %d", key, set.version(t)) {
		t.Fatalf("watch printed %q, want the set", l)
	}
	want := fmt.Sprintf("expired %s version %d on %s", key, set.version(t), nodes[1].Name())
	if l := watch.next(t); l != want {
		t.Fatalf("watch printed %q, want %q", l, want)
	}
	select {
	case err := <-blocked:
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited > 5*time.Second {
			t.Fatalf("the blocking query answered after %s", waited)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the blocking query did not wake when the key expired")
	}
	// Announced once, by the primary, not by every copy.
	sentinel := keyLedBy(t, nodes[0], "ex/zz", nodes[1].Name())
	end := request(t, nc, "roost.set."+sentinel, []byte("end"))
	if l := watch.next(t); l != fmt.Sprintf("set %s version %d", sentinel, end.version(t)) {
		t.Fatalf("after the expiry the watch printed %q, want the sentinel's set (no second announcement)", l)
	}
	watch.interrupt(t)
}

// TestFeedEvictionAndOptIn: a node with --feed-expiry announces its
// evictions with its name; a node without announces no expiry, and a
// blocking query on a key that expires there waits its whole wait.
func TestFeedEvictionAndOptIn(t *testing.T) {
	t.Parallel()
	on := startNode(t, func(c *node.Config) {
		c.FeedExpiry = true
		c.MaxMemory, c.MaxValue = 64<<10, 1<<10
	})
	watch := startWatch(t, "ev/*", "--json", "--server", on.ClientURL())
	nc := connect(t, on)
	for i := range 200 {
		wantCode(t, "set", request(t, nc, fmt.Sprintf("roost.set.ev/%03d", i), make([]byte, 900)), 200)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := watch.next(t)
		if strings.Contains(l, `"op":"evicted"`) {
			if !strings.Contains(l, `"node":"n1"`) {
				t.Fatalf("eviction without its node: %s", l)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no eviction announced")
		}
	}
	// Not interrupted: it has more lines to print than anyone reads; the
	// cleanup kills it.

	off := startNode(t, func(c *node.Config) { c.Name = "off"; c.SweepInterval = 50 * time.Millisecond })
	watch = startWatch(t, "ex/*", "--server", off.ClientURL())
	nc = connect(t, off)
	set := request(t, nc, "roost.set.ex/k", []byte("v"), "Roost-TTL", "300ms")
	wantCode(t, "set with ttl", set, 200)
	kv := consulKV(t, off, "")
	_, qm := mustGet(t, kv, "ex/k", nil)
	start := time.Now()
	if _, _, err := kv.Get("ex/k", &api.QueryOptions{WaitIndex: qm.LastIndex, WaitTime: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 1400*time.Millisecond {
		t.Fatalf("without --feed-expiry the blocking query answered after %s, before its wait", waited)
	}
	end := request(t, nc, "roost.set.ex/zz", []byte("end"))
	for _, want := range []string{fmt.Sprintf("set ex/k version %d", set.version(t)), fmt.Sprintf("set ex/zz version %d", end.version(t))} {
		if l := watch.next(t); l != want {
			t.Fatalf("without --feed-expiry the watch printed %q, want %q", l, want)
		}
	}
	watch.interrupt(t)
}
