package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

// TestClientRoutesInCluster: a client connected to n1 of three nodes sends
// each operation straight to its partition's primary, so every node serves
// node-batch requests, the generic batch subject stays idle and the nodes
// forward (almost) nothing; when a node leaves, the client falls back and
// refreshes its table, keeps working, and never reads a wrong value.
func TestClientRoutesInCluster(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	// No periodic refresh within the test: only a failed request can make
	// the client fetch the table again.
	c := dialClient(t, nodes[0], client.WithTimeout(2*time.Second), client.WithTableRefresh(time.Hour))
	ctx := context.Background()

	// Forwarded operations travel on the partition subjects; a plain
	// subscription beside the primaries' queue subscriptions sees each.
	var forwarded atomic.Int64
	mon := connect(t, nodes[0])
	fwdSub, err := mon.Subscribe("roost.p.*.batch", func(*nats.Msg) { forwarded.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Flush(); err != nil {
		t.Fatal(err)
	}
	before := endpointStats(t, nodes)

	const keys = 500
	value := func(round, i int) string { return fmt.Sprintf("round %d of key %d", round, i) }
	key := func(i int) string { return fmt.Sprintf("ck.%d", i) }
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			if _, err := c.Set(ctx, key(i), []byte(value(1, i))); err != nil {
				t.Errorf("Set %s: %v", key(i), err)
				return
			}
			if it, err := c.Get(ctx, key(i)); err != nil || string(it.Value) != value(1, i) {
				t.Errorf("Get %s = %q, %v; want %q", key(i), it.Value, err, value(1, i))
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if err := mon.Flush(); err != nil { // the monitor has seen every forward
		t.Fatal(err)
	}
	after := endpointStats(t, nodes)
	generic := 0
	for _, n := range nodes {
		direct := after[n.Name()]["node-batch"] - before[n.Name()]["node-batch"]
		g := after[n.Name()]["batch"] - before[n.Name()]["batch"]
		t.Logf("%s: %d node-batch requests, %d generic batch requests", n.Name(), direct, g)
		if direct == 0 {
			t.Errorf("%s served no node-batch requests: the client did not route to it", n.Name())
		}
		generic += g
	}
	t.Logf("%d forwarded messages for %d operations", forwarded.Load(), 2*keys)
	if generic > 2 {
		t.Errorf("%d requests on the generic batch subject with the table loaded, want about 0", generic)
	}
	if f := forwarded.Load(); f > 2 {
		t.Errorf("nodes forwarded %d messages, want about 0: requests did not go to the primaries", f)
	}
	// The monitor would hide "no responders" from forwarders while partitions move.
	if err := fwdSub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}

	// n3 leaves. Its keys may be gone (until replication lands), and so may
	// some that moved between n1 and n2, but no read is ever wrong.
	before = endpointStats(t, nodes[:2])
	nodes[2].Stop()
	checkReads := func(round int) {
		t.Helper()
		for i := range keys {
			eventually(t, 10*time.Second, func() error {
				it, err := c.Get(ctx, key(i))
				switch {
				case errors.Is(err, client.ErrNotFound):
					return nil
				case err != nil:
					return err // a moment of fallback: ask again
				case string(it.Value) != value(round, i):
					t.Fatalf("Get %s = %q after n3 left, want %q or not found", key(i), it.Value, value(round, i))
				}
				return nil
			})
		}
	}
	start := time.Now()
	checkReads(1)
	after = endpointStats(t, nodes[:2])
	fallback := after["n1"]["batch"] - before["n1"]["batch"] + after["n2"]["batch"] - before["n2"]["batch"]
	// A request n3 took as it stopped times out instead; either failure
	// makes the client fetch the table again.
	t.Logf("reads right after n3 left: %s, %d fell back to the generic subject", time.Since(start), fallback)
	before = after
	for i := range keys {
		eventually(t, 10*time.Second, func() error {
			_, err := c.Set(ctx, key(i), []byte(value(2, i)))
			return err
		})
	}
	for i := range keys {
		// A moment of unavailability is retried; a wrong value never is.
		eventually(t, 10*time.Second, func() error {
			it, err := c.Get(ctx, key(i))
			switch {
			case err != nil:
				return err
			case string(it.Value) != value(2, i):
				t.Fatalf("Get %s = %q after rewriting it; want %q", key(i), it.Value, value(2, i))
			}
			return nil
		})
	}
	// The failures made the client fetch the new table (there is no
	// periodic refresh here): straight to n1 and n2 again, and nothing
	// sent to n3's subject falls back.
	after = endpointStats(t, nodes[:2])
	generic = 0
	for _, n := range nodes[:2] {
		direct := after[n.Name()]["node-batch"] - before[n.Name()]["node-batch"]
		g := after[n.Name()]["batch"] - before[n.Name()]["batch"]
		t.Logf("after n3 left, %s: %d node-batch requests, %d generic batch requests", n.Name(), direct, g)
		if direct == 0 {
			t.Errorf("after n3 left, %s served no node-batch requests", n.Name())
		}
		generic += g
	}
	if generic > 10 {
		t.Errorf("after n3 left, %d requests still took the generic subject: the table was not refreshed", generic)
	}
}

// endpointStats returns, per node name, the requests each endpoint of the
// roost micro service has served ($SRV.STATS.roost, one answer per node).
func endpointStats(t *testing.T, nodes []*node.Node) map[string]map[string]int {
	t.Helper()
	nc := connect(t, nodes[0])
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest("$SRV.STATS.roost", inbox, nil); err != nil {
		t.Fatal(err)
	}
	stats := map[string]map[string]int{}
	for len(stats) < len(nodes) {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("$SRV.STATS.roost: %d of %d answers: %v", len(stats), len(nodes), err)
		}
		var s struct {
			Metadata  map[string]string `json:"metadata"`
			Endpoints []struct {
				Name        string `json:"name"`
				NumRequests int    `json:"num_requests"`
			} `json:"endpoints"`
		}
		if err := json.Unmarshal(msg.Data, &s); err != nil {
			t.Fatal(err)
		}
		eps := map[string]int{}
		for _, ep := range s.Endpoints {
			eps[ep.Name] = ep.NumRequests
		}
		stats[s.Metadata["node"]] = eps
	}
	return stats
}
