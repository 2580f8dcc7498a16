package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/internal/testkit"
)

// setup starts a NATS server, a fake node on it, and a client with opts.
func setup(t *testing.T, opts ...client.Option) (*client.Client, *fakeNode) {
	t.Helper()
	srv := startServer(t, "")
	node := startNode(t, srv.ClientURL(), "")
	c, err := client.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c, node
}

// checkFor polls cond until it returns nil or total passes (testkit.Eventually).
func checkFor(t *testing.T, total time.Duration, cond func() error) {
	t.Helper()
	testkit.Eventually(t, total, cond)
}

// waitArrived waits until the fake node has received the held key.
func waitArrived(t *testing.T, node *fakeNode, key string) {
	t.Helper()
	select {
	case k := <-node.arrived:
		if k != key {
			t.Fatalf("held key %q arrived, want %q", k, key)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("held key %q never reached the node", key)
	}
}

// waitDone waits for a call's error on ch, failing after within.
func waitDone(t *testing.T, ch <-chan error, within time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(within):
		t.Fatalf("%s did not return within %s", what, within)
		return nil
	}
}

var batchingModes = []struct {
	name string
	on   bool
}{{"batching", true}, {"unbatched", false}}

func TestRoundTrip(t *testing.T) {
	for _, mode := range batchingModes {
		t.Run(mode.name, func(t *testing.T) {
			c, _ := setup(t, client.WithBatching(mode.on))
			ctx := context.Background()

			v1, err := c.Set(ctx, "a.b.c", []byte("one"), client.Flags(42))
			if err != nil || v1 == 0 {
				t.Fatalf("Set = %d, %v; want a version", v1, err)
			}
			it, err := c.Get(ctx, "a.b.c")
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			want := client.Item{Key: "a.b.c", Value: []byte("one"), Version: v1, Flags: 42}
			if it.Key != want.Key || string(it.Value) != "one" || it.Version != v1 || it.Flags != 42 || !it.Expires.IsZero() || !it.Found() {
				t.Fatalf("Get = %+v, want %+v", it, want)
			}

			v2, err := c.Set(ctx, "a.b.c", []byte("two"))
			if err != nil || v2 <= v1 {
				t.Fatalf("second Set = %d, %v; want a version above %d", v2, err, v1)
			}
			if it, _ := c.Get(ctx, "a.b.c"); string(it.Value) != "two" || it.Flags != 0 {
				t.Fatalf("Get after overwrite = %+v", it)
			}

			if _, err := c.Delete(ctx, "a.b.c"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if _, err := c.Get(ctx, "a.b.c"); !errors.Is(err, client.ErrNotFound) {
				t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
			}
			if _, err := c.Delete(ctx, "a.b.c"); err != nil {
				t.Fatalf("Delete of an absent key: %v, want success", err)
			}
			if _, err := c.Get(ctx, ""); !errors.Is(err, client.ErrBadRequest) {
				t.Fatalf("Get(\"\"): err = %v, want ErrBadRequest", err)
			}
		})
	}
}

func TestErrorCodes(t *testing.T) {
	c, _ := setup(t)
	ctx := context.Background()
	sentinels := []error{client.ErrBadRequest, client.ErrNotFound, client.ErrCASMismatch,
		client.ErrTooLarge, client.ErrInternal, client.ErrNotReady, client.ErrUnauthorized}
	for _, tc := range []struct {
		code int
		want error // nil: matches no sentinel
	}{
		{400, client.ErrBadRequest},
		{403, client.ErrUnauthorized},
		{404, client.ErrNotFound},
		{409, client.ErrCASMismatch},
		{413, client.ErrTooLarge},
		{500, client.ErrInternal},
		{503, client.ErrNotReady},
		{418, nil},
	} {
		key := fmt.Sprintf("code-%d", tc.code)
		_, getErr := c.Get(ctx, key)
		_, setErr := c.Set(ctx, key, []byte("x"))
		_, delErr := c.Delete(ctx, key)
		for _, err := range []error{getErr, setErr, delErr} {
			var e *client.Error
			if !errors.As(err, &e) || e.Code != tc.code || !strings.Contains(e.Message, "forced") {
				t.Errorf("code %d: err = %#v, want *Error with that code and the node's message", tc.code, err)
				continue
			}
			for _, s := range sentinels {
				if got := errors.Is(err, s); got != (s == tc.want) {
					t.Errorf("code %d: errors.Is(err, %v) = %v", tc.code, s, got)
				}
			}
		}
	}
}

func TestCompareAndSwap(t *testing.T) {
	c, node := setup(t)
	ctx := context.Background()

	v1, err := c.CompareAndSwap(ctx, "k", []byte("1"), 0)
	if err != nil {
		t.Fatalf("CAS 0 on an absent key: %v", err)
	}
	if _, err := c.CompareAndSwap(ctx, "k", []byte("x"), 0); !errors.Is(err, client.ErrCASMismatch) {
		t.Fatalf("CAS 0 on a present key: err = %v, want ErrCASMismatch", err)
	}
	v2, err := c.CompareAndSwap(ctx, "k", []byte("2"), v1)
	if err != nil || v2 <= v1 {
		t.Fatalf("CAS at the current version = %d, %v", v2, err)
	}
	if _, err := c.Set(ctx, "k", []byte("x"), client.IfVersion(v1)); !errors.Is(err, client.ErrCASMismatch) {
		t.Fatalf("Set IfVersion(stale): err = %v, want ErrCASMismatch", err)
	}
	if _, err := c.CompareAndSwap(ctx, "absent", []byte("x"), 7); !errors.Is(err, client.ErrCASMismatch) {
		t.Fatalf("CAS 7 on an absent key: err = %v, want ErrCASMismatch", err)
	}
	if _, err := c.Delete(ctx, "k", client.IfVersion(v1)); !errors.Is(err, client.ErrCASMismatch) {
		t.Fatalf("Delete IfVersion(stale): err = %v, want ErrCASMismatch", err)
	}
	if _, err := c.Delete(ctx, "k", client.IfVersion(v2)); err != nil {
		t.Fatalf("Delete IfVersion(current): %v", err)
	}
	if it, err := c.Get(ctx, "k"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get after CAS delete = %+v, %v", it, err)
	}

	// On the wire: an unconditional write has no CAS, IfVersion(0) has CAS 0.
	if _, err := c.Set(ctx, "plain", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set(ctx, "fresh", nil, client.IfVersion(0)); err != nil {
		t.Fatal(err)
	}
	log := node.batchLog()
	if op := log[len(log)-2].Ops[0]; op.Key != "plain" || op.CAS != nil {
		t.Errorf("unconditional Set sent %+v, want no CAS", op)
	}
	if op := log[len(log)-1].Ops[0]; op.Key != "fresh" || op.CAS == nil || *op.CAS != 0 {
		t.Errorf("IfVersion(0) sent %+v, want CAS 0", op)
	}
}

func TestTTLEncoding(t *testing.T) {
	c, node := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		ttl    time.Duration
		wantMS int64
	}{
		{0, 0},
		{time.Microsecond, 1}, // rounded up: a positive TTL must not mean "never"
		{time.Millisecond, 1},
		{1500 * time.Millisecond, 1500},
		{1500*time.Millisecond + time.Nanosecond, 1501},
		{2 * time.Hour, 7_200_000},
	} {
		key := "ttl-" + tc.ttl.String()
		before := time.Now()
		if _, err := c.Set(ctx, key, []byte("v"), client.TTL(tc.ttl)); err != nil {
			t.Fatalf("Set TTL %s: %v", tc.ttl, err)
		}
		log := node.batchLog()
		if got := log[len(log)-1].Ops[0].TTL; got != tc.wantMS {
			t.Errorf("TTL %s went as %d ms, want %d", tc.ttl, got, tc.wantMS)
		}
		if tc.ttl < time.Second {
			continue // may already have expired
		}
		it, err := c.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get %s: %v", key, err)
		}
		lo, hi := before.Add(tc.ttl).Add(-time.Millisecond), time.Now().Add(tc.ttl).Add(time.Millisecond)
		if it.Expires.Before(lo) || it.Expires.After(hi) {
			t.Errorf("TTL %s: Expires = %s, want within [%s, %s]", tc.ttl, it.Expires, lo, hi)
		}
	}
	if it, _ := c.Get(ctx, "ttl-0s"); !it.Expires.IsZero() {
		t.Errorf("no TTL: Expires = %s, want zero", it.Expires)
	}

	sent := node.batches.Load()
	if _, err := c.Set(ctx, "neg", []byte("v"), client.TTL(-time.Second)); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("negative TTL: err = %v, want ErrBadRequest", err)
	}
	if node.batches.Load() != sent {
		t.Error("a negative TTL was sent to the node")
	}
}

func TestMSetMGetMDelete(t *testing.T) {
	c, node := setup(t, client.WithMaxBatch(128))
	ctx := context.Background()

	const n = 300 // three messages of at most 128
	items := make([]client.SetItem, n)
	for i := range items {
		items[i] = client.SetItem{Key: fmt.Sprintf("m%03d", i), Value: []byte(fmt.Sprint("v", i)),
			Options: []client.WriteOption{client.Flags(uint64(i))}}
	}
	before := node.batches.Load()
	versions, err := c.MSet(ctx, items...)
	if err != nil {
		t.Fatalf("MSet: %v", err)
	}
	if got := node.batches.Load() - before; got != 3 {
		t.Errorf("MSet of %d items took %d messages, want 3", n, got)
	}
	for i := 1; i < n; i++ {
		if versions[i] <= versions[i-1] {
			t.Fatalf("versions not rising in order: [%d]=%d, [%d]=%d", i-1, versions[i-1], i, versions[i])
		}
	}

	keys := []string{"m000", "missing", "m299", "m128"}
	before = node.batches.Load()
	got, err := c.MGet(ctx, keys...)
	if err != nil {
		t.Fatalf("MGet: %v", err)
	}
	if node.batches.Load()-before != 1 {
		t.Errorf("MGet of %d keys took %d messages, want 1", len(keys), node.batches.Load()-before)
	}
	for i, k := range keys {
		if got[i].Key != k {
			t.Errorf("MGet[%d].Key = %q, want %q", i, got[i].Key, k)
		}
	}
	if got[1].Found() || got[1].Value != nil {
		t.Errorf("missing key: %+v, want not found", got[1])
	}
	if string(got[2].Value) != "v299" || got[2].Version != versions[299] || got[2].Flags != 299 || !got[2].Found() {
		t.Errorf("MGet m299 = %+v", got[2])
	}

	// Many keys: several messages, results still in order.
	all := make([]string, n)
	for i := range all {
		all[i] = items[i].Key
	}
	got, err = c.MGet(ctx, all...)
	if err != nil {
		t.Fatalf("MGet %d keys: %v", n, err)
	}
	for i := range got {
		if got[i].Key != all[i] || string(got[i].Value) != fmt.Sprint("v", i) {
			t.Fatalf("MGet[%d] = %+v", i, got[i])
		}
	}

	// Per-op failures: a *BatchError by index, the rest still done.
	versions, err = c.MSet(ctx,
		client.SetItem{Key: "ok1", Value: []byte("x")},
		client.SetItem{Key: "m000", Value: []byte("x"), Options: []client.WriteOption{client.IfVersion(1 << 40)}},
		client.SetItem{Key: "code-503", Value: []byte("x")},
		client.SetItem{Key: "ok2", Value: []byte("x")},
	)
	var be *client.BatchError
	if !errors.As(err, &be) || len(be.Errors) != 4 || be.Failed() != 2 {
		t.Fatalf("MSet with failures: err = %v, want *BatchError with 2 of 4", err)
	}
	if be.Errors[0] != nil || be.Errors[3] != nil || !errors.Is(be.Errors[1], client.ErrCASMismatch) || !errors.Is(be.Errors[2], client.ErrNotReady) {
		t.Errorf("BatchError.Errors = %v", be.Errors)
	}
	if !errors.Is(err, client.ErrCASMismatch) || !errors.Is(err, client.ErrNotReady) || errors.Is(err, client.ErrNotFound) {
		t.Errorf("errors.Is on the BatchError does not see its operations' errors: %v", err)
	}
	if versions[0] == 0 || versions[1] != 0 || versions[2] != 0 || versions[3] == 0 {
		t.Errorf("versions = %v, want 0 exactly for the failed items", versions)
	}
	got, err = c.MGet(ctx, "ok1", "code-500")
	if !errors.As(err, &be) || be.Errors[0] != nil || !errors.Is(be.Errors[1], client.ErrInternal) || string(got[0].Value) != "x" {
		t.Errorf("MGet with a failure = %+v, %v", got, err)
	}

	if err := c.MDelete(ctx, "m000", "m001", "never-there"); err != nil {
		t.Fatalf("MDelete: %v", err)
	}
	got, _ = c.MGet(ctx, "m000", "m001", "m002")
	if got[0].Found() || got[1].Found() || !got[2].Found() {
		t.Errorf("after MDelete: %+v", got)
	}
	if err := c.MDelete(ctx, "code-409"); !errors.Is(err, client.ErrCASMismatch) {
		t.Errorf("MDelete failure: err = %v", err)
	}
	if got, err := c.MGet(ctx); err != nil || len(got) != 0 {
		t.Errorf("empty MGet = %v, %v", got, err)
	}
}

func TestMSetSplitsByAckMode(t *testing.T) {
	c, node := setup(t)
	all := []client.WriteOption{client.Ack(wire.AckAll)}
	_, err := c.MSet(context.Background(),
		client.SetItem{Key: "a", Options: all},
		client.SetItem{Key: "b", Options: all},
		client.SetItem{Key: "c"},
		client.SetItem{Key: "d", Options: all},
	)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range node.batchLog() {
		var keys []string
		for _, op := range b.Ops {
			keys = append(keys, op.Key)
		}
		got = append(got, b.Ack+":"+strings.Join(keys, ","))
	}
	want := []string{"all:a,b", ":c", "all:d"}
	if !slices.Equal(got, want) {
		t.Errorf("messages = %q, want %q", got, want)
	}
}

func TestScanPaging(t *testing.T) {
	c, node := setup(t)
	ctx := context.Background()
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("s.%02d", i)
		want = append(want, k)
		if _, err := c.Set(ctx, k, []byte(k), client.Flags(uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"s", "r.1", "t.1", "sx"} {
		if _, err := c.Set(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}

	before := node.scans.Load()
	items, err := c.ScanAll(ctx, "s.", client.PageSize(4))
	if err != nil {
		t.Fatalf("ScanAll: %v", err)
	}
	if got := node.scans.Load() - before; got != 7 {
		t.Errorf("25 keys in pages of 4 took %d requests, want 7", got)
	}
	var keys []string
	for i, it := range items {
		keys = append(keys, it.Key)
		if string(it.Value) != it.Key || it.Flags != uint64(i) || it.Version == 0 {
			t.Errorf("item %+v", it)
		}
	}
	if !slices.Equal(keys, want) {
		t.Errorf("scan keys = %v, want %v", keys, want)
	}

	keys, err = c.Keys(ctx, "s.") // the node's default page size: 2
	if err != nil || !slices.Equal(keys, want) {
		t.Errorf("Keys = %v, %v; want %v", keys, err, want)
	}
	for it, err := range c.Scan(ctx, "s.", client.KeysOnly()) {
		if err != nil || it.Value != nil {
			t.Fatalf("KeysOnly scan gave %+v, %v", it, err)
		}
	}
	items, err = c.ScanAll(ctx, "s.", client.StartAfter("s.21"))
	if err != nil || len(items) != 3 || items[0].Key != "s.22" {
		t.Errorf("StartAfter s.21 = %v, %v", items, err)
	}

	// Breaking out stops fetching pages.
	before = node.scans.Load()
	n := 0
	for _, err := range c.Scan(ctx, "s.", client.PageSize(5)) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if got := node.scans.Load() - before; got != 1 {
		t.Errorf("a scan stopped in its first page made %d requests", got)
	}

	if keys, err := c.Keys(ctx, "nothing."); err != nil || len(keys) != 0 {
		t.Errorf("Keys of an empty prefix = %v, %v", keys, err)
	}
}

func TestWholeRequestErrors(t *testing.T) {
	c, node := setup(t, client.WithMaxBatch(50))
	ctx := context.Background()

	node.fail("batch", "503", "not caught up")
	_, err := c.Get(ctx, "k")
	var e *client.Error
	if !errors.As(err, &e) || e.Code != 503 || e.Message != "not caught up" || !errors.Is(err, client.ErrNotReady) {
		t.Errorf("Get on a whole-request 503: %#v", err)
	}

	node.fail("batch", "400", "malformed msgpack")
	if _, err := c.Set(ctx, "k", []byte("v")); !errors.Is(err, client.ErrBadRequest) || !strings.Contains(err.Error(), "malformed msgpack") {
		t.Errorf("Set on a whole-request 400: %v", err)
	}

	node.fail("batch", "500", "boom")
	if _, err := c.MGet(ctx, "a", "b"); !errors.Is(err, client.ErrInternal) {
		t.Errorf("MGet on a whole-request 500: %v", err)
	}

	node.fail("batch", "abc", "garbled")
	if _, err := c.Get(ctx, "k"); !errors.As(err, &e) || e.Code != 500 || !strings.Contains(e.Message, "garbled") {
		t.Errorf("unreadable error code: %v", err)
	}

	// The node refuses a batch over its limit as a whole.
	node.maxOps = 10
	items := make([]client.SetItem, 20)
	for i := range items {
		items[i] = client.SetItem{Key: fmt.Sprint("big", i)}
	}
	if _, err := c.MSet(ctx, items...); !errors.Is(err, client.ErrTooLarge) {
		t.Errorf("MSet over the node's batch limit: %v", err)
	}

	node.fail("scan", "503", "scan not ready")
	if _, err := c.Keys(ctx, ""); !errors.Is(err, client.ErrNotReady) {
		t.Errorf("Keys on a whole-request 503: %v", err)
	}
	node.fail("status", "403", "go away")
	if _, err := c.Status(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("Status on a whole-request 403: %v", err)
	}
}

func TestStatus(t *testing.T) {
	c, _ := setup(t)
	ctx := context.Background()
	if _, err := c.Set(ctx, "k", nil); err != nil {
		t.Fatal(err)
	}
	raw, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	var st struct {
		Name string `json:"name"`
		Keys int    `json:"keys"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || st.Name != "fake" || st.Keys != 1 {
		t.Errorf("Status = %s (%v)", raw, err)
	}
}

// TestBatchingUnderConcurrency checks that concurrent callers each get their
// own results and, with batching on, share messages.
func TestBatchingUnderConcurrency(t *testing.T) {
	const (
		workers = 64
		rounds  = 100 // a Set and a Get each
		calls   = workers * rounds * 2
	)
	for _, mode := range batchingModes {
		t.Run(mode.name, func(t *testing.T) {
			c, node := setup(t, client.WithBatching(mode.on), client.WithTimeout(30*time.Second))
			ctx := context.Background()
			var wg sync.WaitGroup
			errs := make(chan error, workers)
			for w := range workers {
				wg.Go(func() {
					for r := range rounds {
						key := fmt.Sprintf("w%d.r%d", w, r)
						val := fmt.Sprintf("value of worker %d round %d", w, r)
						ver, err := c.Set(ctx, key, []byte(val))
						if err != nil {
							errs <- fmt.Errorf("Set %s: %w", key, err)
							return
						}
						it, err := c.Get(ctx, key)
						if err != nil {
							errs <- fmt.Errorf("Get %s: %w", key, err)
							return
						}
						if it.Key != key || string(it.Value) != val || it.Version != ver {
							errs <- fmt.Errorf("Get %s = %+v, want value %q version %d", key, it, val, ver)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}

			msgs, ops := node.batches.Load(), node.ops.Load()
			t.Logf("%d calls in %d messages (largest %d ops)", calls, msgs, node.maxSeen.Load())
			if ops != calls {
				t.Fatalf("node saw %d operations, want %d", ops, calls)
			}
			if mode.on {
				if msgs >= calls/2 {
					t.Errorf("%d calls took %d messages: no batching", calls, msgs)
				}
				if m := node.maxSeen.Load(); m > client.DefaultMaxBatch {
					t.Errorf("a message carried %d ops, over MaxBatch %d", m, client.DefaultMaxBatch)
				}
			} else if msgs != calls {
				t.Errorf("unbatched: %d calls took %d messages, want one each", calls, msgs)
			}
		})
	}
}

func TestBatchesGroupByAckMode(t *testing.T) {
	c, node := setup(t, client.WithMaxInFlight(1))
	ctx := context.Background()
	release := node.hold("slow")
	defer release()
	slow := make(chan error, 1)
	go func() { _, err := c.Get(ctx, "slow"); slow <- err }()
	waitArrived(t, node, "slow")

	// With the only slot busy, these queue up, acks interleaved.
	var wg sync.WaitGroup
	for i := range 20 {
		ack := wire.AckPrimary
		if i%2 == 1 {
			ack = wire.AckAll
		}
		wg.Go(func() {
			if _, err := c.Set(ctx, fmt.Sprintf("%s-%d", ack, i), nil, client.Ack(ack)); err != nil {
				t.Errorf("Set: %v", err)
			}
		})
	}
	checkFor(t, 5*time.Second, func() error {
		if n := client.Waiting(c); n != 20 {
			return fmt.Errorf("%d calls waiting, want 20", n)
		}
		return nil
	})
	release()
	wg.Wait()
	if err := <-slow; err == nil || !errors.Is(err, client.ErrNotFound) {
		t.Errorf("slow Get: %v, want ErrNotFound", err)
	}

	log := node.batchLog()[1:] // after the slow Get
	if len(log) != 2 {
		t.Fatalf("20 queued writes of 2 ack modes went in %d messages, want 2", len(log))
	}
	for _, b := range log {
		if len(b.Ops) != 10 {
			t.Errorf("message of ack %q has %d ops, want 10", b.Ack, len(b.Ops))
		}
		for _, op := range b.Ops {
			if !strings.HasPrefix(op.Key, b.Ack+"-") {
				t.Errorf("op %s in a message with ack %q", op.Key, b.Ack)
			}
		}
	}
}

func TestCancelledCallerDoesNotBreakOthers(t *testing.T) {
	c, node := setup(t)
	release := node.hold("slow")
	defer release()

	ctx, cancel := context.WithCancel(context.Background())
	slow := make(chan error, 1)
	go func() { _, err := c.Get(ctx, "slow"); slow <- err }()
	waitArrived(t, node, "slow")

	// Others complete while the slow call is outstanding.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			k := fmt.Sprint("other", i)
			if _, err := c.Set(context.Background(), k, []byte(k)); err != nil {
				t.Errorf("Set %s: %v", k, err)
			}
			if it, err := c.Get(context.Background(), k); err != nil || string(it.Value) != k {
				t.Errorf("Get %s = %+v, %v", k, it, err)
			}
		})
	}
	wg.Wait()

	cancel()
	if err := waitDone(t, slow, time.Second, "cancelled Get"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Get: err = %v, want context.Canceled", err)
	}
	release() // its late reply is dropped; the client keeps working
	if _, err := c.Set(context.Background(), "after", []byte("x")); err != nil {
		t.Errorf("Set after a dropped reply: %v", err)
	}

	// An already cancelled context fails at once.
	if _, err := c.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled ctx: %v", err)
	}
}

func TestCancelledQueuedCallIsNotSent(t *testing.T) {
	c, node := setup(t, client.WithMaxInFlight(1))
	release := node.hold("slow")
	defer release()
	slow := make(chan error, 1)
	go func() { _, err := c.Get(context.Background(), "slow"); slow <- err }()
	waitArrived(t, node, "slow")

	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan error, 1)
	go func() { _, err := c.Set(ctx, "dropped", []byte("x")); queued <- err }()
	checkFor(t, 5*time.Second, func() error {
		if n := client.Waiting(c); n != 1 {
			return fmt.Errorf("%d calls waiting, want 1", n)
		}
		return nil
	})
	cancel()
	if err := waitDone(t, queued, time.Second, "cancelled queued Set"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled queued Set: %v", err)
	}
	release()
	if err := waitDone(t, slow, 5*time.Second, "slow Get"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("slow Get: %v", err)
	}
	if _, err := c.Get(context.Background(), "dropped"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("the cancelled Set was applied: Get err = %v", err)
	}
	for _, b := range node.batchLog() {
		for _, op := range b.Ops {
			if op.Key == "dropped" && op.Op == wire.OpSet {
				t.Errorf("the cancelled Set was sent: %+v", b)
			}
		}
	}
}

func TestTimeout(t *testing.T) {
	for _, mode := range batchingModes {
		t.Run(mode.name, func(t *testing.T) {
			c, node := setup(t, client.WithBatching(mode.on), client.WithTimeout(100*time.Millisecond))
			release := node.hold("slow")
			defer release()
			start := time.Now()
			_, err := c.Get(context.Background(), "slow")
			if !errors.Is(err, client.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want ErrTimeout and DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("timed out after %s, want about 100ms", d)
			}
			// A context deadline wins over the client's timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start = time.Now()
			if _, err := c.Get(ctx, "slow"); !errors.Is(err, client.ErrTimeout) || time.Since(start) < 250*time.Millisecond {
				t.Errorf("ctx deadline: err = %v after %s", err, time.Since(start))
			}
		})
	}
}

// TestQueuedCallTimesOut: a call with no deadline of its own, queued behind
// a message its node sits on for longer than the client's timeout, fails
// with ErrTimeout about that timeout after it was made, unsent: the
// batcher keeps no timer per call, and its lane's timer must catch it.
func TestQueuedCallTimesOut(t *testing.T) {
	c, node := setup(t, client.WithMaxInFlight(1), client.WithTimeout(200*time.Millisecond))
	release := node.hold("slow")
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // outlives the client's timeout
	defer cancel()
	slow := make(chan error, 1)
	go func() { _, err := c.Get(ctx, "slow"); slow <- err }()
	waitArrived(t, node, "slow")
	start := time.Now()
	queued := make(chan error, 1)
	go func() { _, err := c.Get(context.Background(), "queued"); queued <- err }()
	if err := waitDone(t, queued, 3*time.Second, "queued Get"); !errors.Is(err, client.ErrTimeout) {
		t.Errorf("queued Get: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("queued Get failed after %s, want about 200ms", d)
	}
	if n := client.Waiting(c); n != 0 {
		t.Errorf("%d calls still waiting", n)
	}
	release()
	if err := waitDone(t, slow, 5*time.Second, "held Get"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("held Get: %v, want ErrNotFound", err)
	}
	for _, b := range node.batchLog() {
		for _, op := range b.Ops {
			if op.Key == "queued" {
				t.Errorf("the timed-out call was sent: %+v", b)
			}
		}
	}
}

func TestNoNode(t *testing.T) {
	srv := startServer(t, "")
	for _, mode := range batchingModes {
		c, err := client.Connect(srv.ClientURL(), client.WithBatching(mode.on))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx := context.Background()
		if _, err := c.Get(ctx, "k"); !errors.Is(err, client.ErrNotReady) || !strings.Contains(err.Error(), "roost.bin.batch") {
			t.Errorf("%s: Get with no node: %v", mode.name, err)
		}
		if _, err := c.Status(ctx); !errors.Is(err, client.ErrNotReady) {
			t.Errorf("%s: Status with no node: %v", mode.name, err)
		}
	}
}

func TestPrefix(t *testing.T) {
	c, _ := setup(t, client.WithPrefix("other"))
	_, err := c.Get(context.Background(), "k")
	if !errors.Is(err, client.ErrNotReady) || !strings.Contains(err.Error(), "other.bin.batch") {
		t.Errorf("Get under a prefix nobody serves: %v", err)
	}
}

func TestConnect(t *testing.T) {
	srv := startServer(t, "s3cret")
	startNode(t, srv.ClientURL(), "s3cret")

	_, err := client.Connect(srv.ClientURL(), client.WithToken("wrong"))
	if !errors.Is(err, client.ErrUnauthorized) || !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("wrong token: err = %v, want ErrUnauthorized", err)
	}
	if _, err := client.Connect(srv.ClientURL()); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("no token: err = %v, want ErrUnauthorized", err)
	}
	c, err := client.Connect(srv.ClientURL(), client.WithToken("s3cret"), client.WithName("test"))
	if err != nil {
		t.Fatalf("right token: %v", err)
	}
	defer c.Close()
	if _, err := c.Set(context.Background(), "k", []byte("v")); err != nil {
		t.Errorf("Set with the right token: %v", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "nats://" + l.Addr().String()
	l.Close()
	_, err = client.Connect(refused)
	if err == nil || !errors.Is(err, nats.ErrNoServers) || !strings.Contains(err.Error(), refused) {
		t.Errorf("connection refused: err = %v", err)
	}
}

func TestClose(t *testing.T) {
	srv := startServer(t, "")
	node := startNode(t, srv.ClientURL(), "")
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Let nats.go start its own goroutines before counting ours.
	if _, err := nc.Request(node.subj.Status(), nil, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()

	c, err := client.New(nc, client.WithMaxInFlight(1))
	if err != nil {
		t.Fatal(err)
	}
	release := node.hold("slow")
	defer release()
	inFlight := make(chan error, 1)
	go func() { _, err := c.Get(context.Background(), "slow"); inFlight <- err }()
	waitArrived(t, node, "slow")
	queued := make(chan error, 5)
	for i := range 5 {
		go func() { _, err := c.Set(context.Background(), fmt.Sprint("q", i), nil); queued <- err }()
	}
	checkFor(t, 5*time.Second, func() error {
		if n := client.Waiting(c); n != 5 {
			return fmt.Errorf("%d calls waiting, want 5", n)
		}
		return nil
	})

	c.Close()
	c.Close() // idempotent
	if err := waitDone(t, inFlight, time.Second, "in-flight Get"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("in-flight call after Close: %v", err)
	}
	for range 5 {
		if err := waitDone(t, queued, time.Second, "queued Set"); !errors.Is(err, client.ErrClosed) {
			t.Errorf("queued call after Close: %v", err)
		}
	}
	if _, err := c.Get(context.Background(), "k"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := c.MGet(context.Background(), "k"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("MGet after Close: %v", err)
	}
	if nc.IsClosed() {
		t.Error("Close closed a connection the client did not open")
	}
	release() // the fake node's held reply goroutine is not the client's
	checkFor(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > baseline {
			return fmt.Errorf("%d goroutines, %d before the client", n, baseline)
		}
		return nil
	})
}

func TestCloseOwnConnection(t *testing.T) {
	srv := startServer(t, "")
	c, err := client.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if !c.Conn().IsClosed() {
		t.Error("Close left the connection Connect opened")
	}
	if _, err := c.Set(context.Background(), "k", nil); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Set after Close: %v", err)
	}
}
