package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

func dialClient(t *testing.T, n *node.Node, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Connect(n.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("client.Connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestClientAgainstNode(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *node.Config) { c.MaxValue = 64 << 10 })
	c := dialClient(t, n)
	ctx := context.Background()

	v1, err := c.Set(ctx, "user.1", []byte("ada"), client.Flags(9), client.TTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	it, err := c.Get(ctx, "user.1")
	if err != nil || string(it.Value) != "ada" || it.Version != v1 || it.Flags != 9 {
		t.Fatalf("Get = %+v, %v; want ada v%d flags 9", it, err, v1)
	}
	if d := time.Until(it.Expires); d < 59*time.Minute || d > time.Hour+time.Minute {
		t.Fatalf("Expires in %s, want about an hour", d)
	}

	if _, err := c.CompareAndSwap(ctx, "user.1", []byte("bob"), v1-1); !errors.Is(err, client.ErrCASMismatch) {
		t.Fatalf("stale CAS: %v, want ErrCASMismatch", err)
	}
	v2, err := c.CompareAndSwap(ctx, "user.1", []byte("bob"), v1)
	if err != nil || v2 <= v1 {
		t.Fatalf("CAS = %d, %v; want a version above %d", v2, err, v1)
	}
	if _, err := c.Set(ctx, "user.1", []byte("x"), client.IfVersion(0)); !errors.Is(err, client.ErrCASMismatch) {
		t.Fatalf("only-if-absent on a present key: %v", err)
	}
	if _, err := c.Delete(ctx, "user.1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "user.1"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}

	// Limits give typed errors and the client keeps working.
	if _, err := c.Set(ctx, strings.Repeat("k", 1025), []byte("v")); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("over-long key: %v, want ErrBadRequest", err)
	}
	if _, err := c.Set(ctx, "big", make([]byte, 64<<10+1)); !errors.Is(err, client.ErrTooLarge) {
		t.Fatalf("oversized value: %v, want ErrTooLarge", err)
	}

	// Multi-key calls and scans.
	var items []client.SetItem
	for i := range 250 {
		items = append(items, client.SetItem{Key: fmt.Sprintf("scan.%03d", i), Value: []byte(fmt.Sprint(i))})
	}
	if _, err := c.MSet(ctx, items...); err != nil {
		t.Fatal(err)
	}
	got, err := c.MGet(ctx, "scan.007", "scan.missing", "scan.249")
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0].Value) != "7" || got[1].Found() || string(got[2].Value) != "249" {
		t.Fatalf("MGet = %+v", got)
	}
	keys, err := c.Keys(ctx, "scan.")
	if err != nil || len(keys) != 250 || keys[0] != "scan.000" || keys[249] != "scan.249" {
		t.Fatalf("Keys = %d keys (%v), want 250 in order", len(keys), err)
	}
	all, err := c.ScanAll(ctx, "scan.", client.PageSize(7))
	if err != nil || len(all) != 250 || string(all[100].Value) != "100" {
		t.Fatalf("ScanAll with 7-key pages = %d items, %v", len(all), err)
	}
	if err := c.MDelete(ctx, "scan.000", "scan.001"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := c.Keys(ctx, "scan.00"); len(keys) != 8 {
		t.Fatalf("after MDelete scan.00* has %d keys, want 8", len(keys))
	}

	raw, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var st node.Status
	if err := json.Unmarshal(raw, &st); err != nil || st.Name != "n1" || st.Store.Keys != 248 {
		t.Fatalf("Status = %+v, %v; want n1 with 248 keys", st, err)
	}
}

// TestClientBatchesConcurrentCalls checks, against a real node, that every
// concurrent caller gets its own answer and that the calls really shared
// messages: the node's micro stats count the batch messages.
func TestClientBatchesConcurrentCalls(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	c := dialClient(t, n)
	const callers, calls = 64, 100
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			for i := range calls {
				key := fmt.Sprintf("g%d.k%d", g, i)
				want := fmt.Sprintf("value of %s", key)
				if _, err := c.Set(ctx, key, []byte(want)); err != nil {
					errs <- err
					return
				}
				it, err := c.Get(ctx, key)
				if err != nil || string(it.Value) != want {
					errs <- fmt.Errorf("Get %s = %q, %v; want %q", key, it.Value, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	msgs := batchMessages(t, n)
	total := callers * calls * 2
	t.Logf("%d calls in %d batch messages", total, msgs)
	if msgs == 0 || msgs > total/2 {
		t.Fatalf("%d calls took %d batch messages: not batched", total, msgs)
	}
}

// batchMessages reads how many requests the node's batch endpoint served.
func batchMessages(t *testing.T, n *node.Node) int {
	t.Helper()
	nc := connect(t, n)
	resp, err := nc.Request("$SRV.STATS.roost", nil, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var stats struct {
		Endpoints []struct {
			Name        string `json:"name"`
			NumRequests int    `json:"num_requests"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(resp.Data, &stats); err != nil {
		t.Fatal(err)
	}
	for _, ep := range stats.Endpoints {
		if ep.Name == "batch" {
			return ep.NumRequests
		}
	}
	t.Fatalf("no batch endpoint in %s", resp.Data)
	return 0
}

// TestBatchReplyFull: gets whose values would overflow the reply fail one by
// one with 413, the others in the same batch succeed, and each alone works.
func TestBatchReplyFull(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil) // 1 MiB values, messages up to 1 MiB + 64 KiB
	c := dialClient(t, n)
	ctx := context.Background()
	big := make([]byte, 600<<10)
	for _, k := range []string{"b1", "b2", "b3"} {
		if _, err := c.Set(ctx, k, big); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Set(ctx, "small", []byte("s")); err != nil {
		t.Fatal(err)
	}
	nc := connect(t, n)
	req := wire.BatchRequest{Ops: []wire.Request{{Op: wire.OpGet, Key: "b1"}, {Op: wire.OpGet, Key: "b2"}, {Op: wire.OpGet, Key: "small"}, {Op: wire.OpGet, Key: "b3"}}}
	data, _ := wire.Marshal(&req)
	resp, err := nc.Request("roost.bin.batch", data, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var br wire.BatchResponse
	if err := wire.Unmarshal(resp.Data, &br); err != nil {
		t.Fatalf("%v (headers %v)", err, resp.Header)
	}
	codes := []uint16{br.Results[0].Code, br.Results[1].Code, br.Results[2].Code, br.Results[3].Code}
	if fmt.Sprint(codes) != "[200 413 200 413]" {
		t.Fatalf("codes = %v, want [200 413 200 413]", codes)
	}
	for _, k := range []string{"b2", "b3"} {
		if it, err := c.Get(ctx, k); err != nil || len(it.Value) != len(big) {
			t.Fatalf("Get %s alone: %d bytes, %v", k, len(it.Value), err)
		}
	}
	// The client resends such gets alone: MGet and concurrent Gets all succeed.
	items, err := c.MGet(ctx, "b1", "b2", "small", "b3")
	if err != nil {
		t.Fatalf("MGet of large values: %v", err)
	}
	for _, it := range items {
		if !it.Found() {
			t.Fatalf("MGet lost %s", it.Key)
		}
	}
	var wg sync.WaitGroup
	for range 4 {
		for _, k := range []string{"b1", "b2", "b3"} {
			wg.Go(func() {
				if it, err := c.Get(ctx, k); err != nil || len(it.Value) != len(big) {
					t.Errorf("concurrent Get %s: %d bytes, %v", k, len(it.Value), err)
				}
			})
		}
	}
	wg.Wait()
}
