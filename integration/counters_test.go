package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
	"github.com/roostkv/roost/partition"
)

// Counters and sliding TTLs over the text API and HTTP (docs/PROTOCOL.md,
// docs/http.md).

func TestIncrTextAPI(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)
	incr := func(key, delta string, headers ...string) reply {
		t.Helper()
		return request(t, nc, "roost.incr."+key, []byte(delta), headers...)
	}
	for _, step := range []struct {
		delta string
		want  string
	}{{"", "1"}, {"5", "6"}, {"-10", "-4"}, {" +4 ", "0"}} {
		r := incr("hits", step.delta)
		wantCode(t, "incr "+step.delta, r, 200)
		if string(r.body) != step.want {
			t.Fatalf("incr %q = %q, want %q", step.delta, r.body, step.want)
		}
		r.version(t)
	}
	r := request(t, nc, "roost.get.hits", nil)
	if string(r.body) != "0" {
		t.Fatalf("get after incr = %q, want 0", r.body)
	}
	wantCode(t, "bad delta", incr("hits", "1.5"), 400)
	wantCode(t, "delta too large", incr("hits", "99999999999999999999"), 400)
	wantCode(t, "set text", request(t, nc, "roost.set.name", []byte("roost")), 200)
	r = incr("name", "1")
	wantCode(t, "incr of text", r, 409)
	if !strings.Contains(r.err, "does not hold a counter") {
		t.Fatalf("incr of text: reason %q does not say why", r.err)
	}
	wantCode(t, "set max", request(t, nc, "roost.set.big", []byte("9223372036854775807")), 200)
	r = incr("big", "1")
	wantCode(t, "overflow", r, 409)
	if !strings.Contains(r.err, "overflow") {
		t.Fatalf("overflow: reason %q", r.err)
	}
	if r := request(t, nc, "roost.get.big", nil); string(r.body) != "9223372036854775807" {
		t.Fatalf("a refused incr changed the value: %q", r.body)
	}

	// Roost-TTL applies when the counter is created, and only then.
	wantCode(t, "incr with ttl", incr("ttl", "1", "Roost-TTL", "1h"), 200)
	exp := request(t, nc, "roost.get.ttl", nil).hdr.Get("Roost-Expires")
	if exp == "" {
		t.Fatal("a counter created with Roost-TTL has no expiry")
	}
	wantCode(t, "incr again", incr("ttl", "1", "Roost-TTL", "5s"), 200)
	if got := request(t, nc, "roost.get.ttl", nil).hdr.Get("Roost-Expires"); got != exp {
		t.Fatalf("a second incr's Roost-TTL changed the expiry %s to %s", exp, got)
	}
}

func TestTouchSlidesTTL(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *node.Config) { c.SweepInterval = 50 * time.Millisecond })
	nc := connect(t, n)
	wantCode(t, "touch absent", request(t, nc, "roost.touch.none", nil, "Roost-TTL", "1s"), 404)
	wantCode(t, "set", request(t, nc, "roost.set.sess", []byte("data"), "Roost-TTL", "1s", "Roost-Flags", "7"), 200)
	wantCode(t, "touch without ttl", request(t, nc, "roost.touch.sess", nil), 400)
	wantCode(t, "get with a bad touch", request(t, nc, "roost.get.sess", nil, "Roost-Touch", "soon"), 400)

	// Touched every 300 ms, a key with a 1 s TTL outlives it by far.
	start := time.Now()
	for i := 0; time.Since(start) < 2500*time.Millisecond; i++ {
		var r reply
		if i%2 == 0 {
			r = request(t, nc, "roost.touch.sess", nil, "Roost-TTL", "1s")
			wantCode(t, "touch", r, 200)
			if len(r.body) != 0 || r.hdr.Get("Roost-Expires") == "" {
				t.Fatalf("touch answered %q, headers %v: want no body and Roost-Expires", r.body, r.hdr)
			}
		} else {
			r = request(t, nc, "roost.get.sess", nil, "Roost-Touch", "1s")
			wantCode(t, "get and touch", r, 200)
			if string(r.body) != "data" || r.hdr.Get("Roost-Flags") != "7" {
				t.Fatalf("get and touch = %q flags %s, want data flags 7", r.body, r.hdr.Get("Roost-Flags"))
			}
		}
		r.version(t)
		time.Sleep(300 * time.Millisecond) // the client's pace, not a wait for the cluster
	}
	// Left alone, it expires.
	eventually(t, 3*time.Second, func() error {
		if r := request(t, nc, "roost.get.sess", nil); r.code != 404 {
			return fmt.Errorf("still there (code %d)", r.code)
		}
		return nil
	})
}

func TestIncrTouchHTTP(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	do := func(method, path, body string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+n.HTTPAddr()+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if code, body, h := do("PUT", "/v1/roost/incr/web/hits", ""); code != 200 || body != "1\n" || h.Get("X-Roost-Version") == "" {
		t.Fatalf("incr = %d %q %v", code, body, h)
	}
	if code, body, _ := do("PUT", "/v1/roost/incr/web/hits?ack=all", "41"); code != 200 || body != "42\n" {
		t.Fatalf("incr 41 = %d %q", code, body)
	}
	if code, body, _ := do("PUT", "/v1/roost/incr/web/hits", "x"); code != 400 {
		t.Fatalf("incr x = %d %q, want 400", code, body)
	}
	if code, _, _ := do("PUT", "/v1/kv/web/name", "roost"); code != 200 {
		t.Fatalf("kv put = %d", code)
	}
	if code, body, _ := do("PUT", "/v1/roost/incr/web/name", ""); code != 409 || !strings.Contains(body, "counter") {
		t.Fatalf("incr of text = %d %q, want 409 with a reason", code, body)
	}
	if code, _, _ := do("PUT", "/v1/roost/touch/web/none?ttl=10s", ""); code != 404 {
		t.Fatalf("touch absent = %d, want 404", code)
	}
	if code, _, _ := do("PUT", "/v1/roost/touch/web/hits", ""); code != 400 {
		t.Fatalf("touch without ttl = %d, want 400", code)
	}
	code, _, h := do("PUT", "/v1/roost/touch/web/hits?ttl=1h", "")
	if code != 200 || h.Get("X-Roost-Expires") == "" {
		t.Fatalf("touch = %d %v", code, h)
	}
	if code, body, _ := do("GET", "/v1/kv/web/hits?raw", ""); code != 200 || body != "42" {
		t.Fatalf("raw read of the counter = %d %q", code, body)
	}
	if code, _, _ := do("PUT", "/v1/roost/incr/web/../x", ""); code != 400 {
		t.Fatalf("a path with .. = %d, want 400", code)
	}
}

// TestIncrExactAcrossNodes: 16 clients increment one counter 1,000 times
// each with ack=all, spread over the 3 nodes of a cluster: the count is
// exactly 16,000, the answers are exactly 1..16,000, and each client's
// answers rise.
func TestIncrExactAcrossNodes(t *testing.T) {
	t.Parallel()
	// Heartbeats at the default pace, not the fast beats of other cluster
	// tests: on a loaded machine (the race detector's run) 300 ms without a
	// beat would make a node suspect, and partitions moving meanwhile
	// answer 503, outcome unknown, which an exact count cannot allow.
	nodes := startCluster(t, 3, func(_ int, c *node.Config) { c.HeartbeatInterval = 500 * time.Millisecond })
	const clients = 16
	each := 1000
	if testing.Short() {
		each = 100 // the race detector's run (.ci/run): 1,600
	}
	conns := make([]*nats.Conn, len(nodes))
	for i, n := range nodes {
		conns[i] = connect(t, n)
	}
	seen := make([]map[int64]bool, clients)
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		seen[c] = map[int64]bool{}
		wg.Go(func() {
			nc := conns[c%len(conns)]
			var last int64
			for range each {
				r, err := send(nc, "roost.incr.hits", nil, 10*time.Second, "Roost-Ack", "all")
				if err != nil || r.code != 200 {
					errs <- fmt.Errorf("client %d: %v code %d %s", c, err, r.code, r.err)
					return
				}
				v, err := strconv.ParseInt(string(r.body), 10, 64)
				if err != nil {
					errs <- fmt.Errorf("client %d: answer %q: %v", c, r.body, err)
					return
				}
				if v <= last {
					errs <- fmt.Errorf("client %d: count %d after %d: an increment went back in time", c, v, last)
					return
				}
				last = v
				seen[c][v] = true
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := map[int64]bool{}
	for _, s := range seen {
		for v := range s {
			if all[v] {
				t.Fatalf("two increments answered the same count %d", v)
			}
			all[v] = true
		}
	}
	// Linearizable: the answers are exactly 1..N, each once.
	for v := int64(1); v <= int64(clients*each); v++ {
		if !all[v] {
			t.Fatalf("no increment answered %d: the %d answers are not 1..%d", v, len(all), clients*each)
		}
	}
	for i, nc := range conns {
		r := request(t, nc, "roost.get.hits", nil)
		if string(r.body) != strconv.Itoa(clients*each) {
			t.Fatalf("count read through %s = %q, want %d", nodes[i].Name(), r.body, clients*each)
		}
	}
}

// TestClientIncrTouch: the Go client's Incr, Touch and Get(AndTouch), over
// the binary API.
func TestClientIncrTouch(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	c := dialClient(t, n)
	ctx := context.Background()
	v, ver, err := c.Incr(ctx, "c", 3, client.TTL(time.Hour), client.Ack(wire.AckAll))
	if err != nil || v != 3 || ver == 0 {
		t.Fatalf("Incr = %d, %d, %v; want 3", v, ver, err)
	}
	if v, _, err = c.Incr(ctx, "c", -5); err != nil || v != -2 {
		t.Fatalf("Incr -5 = %d, %v; want -2", v, err)
	}
	if _, err := c.Set(ctx, "s", []byte("text")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Incr(ctx, "s", 1); !errors.Is(err, client.ErrCASMismatch) || !strings.Contains(err.Error(), "counter") {
		t.Fatalf("Incr of text: %v, want a 409 saying why", err)
	}
	if _, err := c.Touch(ctx, "none", time.Minute); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Touch of an absent key: %v, want ErrNotFound", err)
	}
	tv, err := c.Touch(ctx, "s", time.Minute)
	if err != nil || tv == 0 {
		t.Fatalf("Touch = %d, %v", tv, err)
	}
	it, err := c.Get(ctx, "s", client.AndTouch(2*time.Hour))
	if err != nil || string(it.Value) != "text" || it.Version <= tv || time.Until(it.Expires) < time.Hour {
		t.Fatalf("Get(AndTouch) = %+v, %v; want the value, a version above %d, an expiry in 2 h", it, err, tv)
	}
	if it, err = c.Get(ctx, "s"); err != nil || time.Until(it.Expires) < time.Hour {
		t.Fatalf("after the touch: %+v, %v", it, err)
	}
}

// TestIncrKillNode: 8 clients increment one counter with ack=all through
// all three nodes, real processes, while the key's primary is killed with
// SIGKILL. A client whose answer is lost (a timeout, a 503) does not know
// whether that increment counted, and makes a new one. The final count is
// at least the acknowledged increments (none is lost while an owner
// survives) and at most those plus the unanswered attempts.
func TestIncrKillNode(t *testing.T) {
	// Not parallel: kill -9 on 150 ms heartbeats.
	if testing.Short() {
		t.Skip("starts three processes and kills one")
	}
	t0 := time.Now()
	// Fast beats: the killed node is declared dead in about a second.
	c := startProcCluster(t, procClusterOptions{Args: []string{"--replicas", "2", "--heartbeat-interval", "150ms"}})
	t.Logf("cluster formed in %s", time.Since(t0))
	const clients, each = 8, 150 // 1,200 acknowledged increments in all
	key := "hits"
	table := procTable(t, c.url("n1"))
	victim := table.Owners[partition.Of(key, table.Partitions)][0]
	var acked, unanswered atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		// Each client starts on another node and fails over to the others.
		urls := c.names[i%3:]
		urls = append(urls[:len(urls):len(urls)], c.names[:i%3]...)
		var list []string
		for _, name := range urls {
			list = append(list, c.url(name))
		}
		nc, err := nats.Connect(strings.Join(list, ","), nats.DontRandomize(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		wg.Go(func() {
			deadline := time.Now().Add(40 * time.Second)
			for n := 0; n < each; {
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("client %d: %d of %d increments acknowledged in 40 s", i, n, each)
					return
				}
				r, err := send(nc, "roost.incr."+key, nil, 3*time.Second, "Roost-Ack", "all")
				switch {
				case err == nil && r.code == 200:
					acked.Add(1)
					n++
				case err == nil && r.code != 503:
					errs <- fmt.Errorf("client %d: code %d %s", i, r.code, r.err)
					return
				default: // lost or unavailable: it may or may not have counted
					unanswered.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	eventually(t, 20*time.Second, func() error {
		if acked.Load() < clients*each/3 {
			return fmt.Errorf("%d acknowledged", acked.Load())
		}
		return nil
	})
	c.kill(victim)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var survivor string
	for _, name := range c.up() {
		survivor = name
	}
	nc := dialURL(t, c.url(survivor))
	var final int64
	eventually(t, 10*time.Second, func() error {
		r, err := send(nc, "roost.get."+key, nil, 3*time.Second)
		if err != nil || r.code != 200 {
			return fmt.Errorf("get: %v %d %s", err, r.code, r.err)
		}
		final, err = strconv.ParseInt(string(r.body), 10, 64)
		return err
	})
	a, u := acked.Load(), unanswered.Load()
	t.Logf("killed %s (the key's primary): %d acknowledged, %d unanswered, final count %d", victim, a, u, final)
	if final < a || final > a+u {
		t.Fatalf("final count %d, want between %d acknowledged and %d (plus the unanswered)", final, a, a+u)
	}
}

// procTable asks the node at url for its partition table.
func procTable(t *testing.T, url string) node.TableReply {
	t.Helper()
	nc := dialURL(t, url)
	m, err := nc.Request(wire.NewSubjects("").Table(), nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var tr node.TableReply
	if err := json.Unmarshal(m.Data, &tr); err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestIncrTouchBinaryAPI: OpIncr, OpTouch and OpGet with a TTL in one
// msgpack batch, bad ones failing alone with a reason.
func TestIncrTouchBinaryAPI(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)
	batch := func(ops ...wire.Request) []wire.Result {
		t.Helper()
		data, _ := wire.Marshal(wire.BatchRequest{Ops: ops, Ack: wire.AckAll})
		resp, err := nc.Request("roost.bin.batch", data, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var br wire.BatchResponse
		if err := wire.Unmarshal(resp.Data, &br); err != nil || len(br.Results) != len(ops) {
			t.Fatalf("batch reply: %v, %+v (headers %v)", err, br, resp.Header)
		}
		return br.Results
	}
	res := batch(
		wire.Request{Op: wire.OpIncr, Key: "c"},                              // 1
		wire.Request{Op: wire.OpIncr, Key: "c", Value: []byte("-8")},         // -7
		wire.Request{Op: wire.OpIncr, Key: "c", Value: []byte("x")},          // 400
		wire.Request{Op: wire.OpTouch, Key: "c"},                             // 400: no TTL
		wire.Request{Op: wire.OpTouch, Key: "c", TTL: 60_000},                // ok
		wire.Request{Op: wire.OpGet, Key: "c", TTL: 120_000},                 // read and touch
		wire.Request{Op: wire.OpTouch, Key: "absent", TTL: 1000},             // 404
		wire.Request{Op: wire.OpSet, Key: "s", Value: []byte("text")},        // ok
		wire.Request{Op: wire.OpIncr, Key: "s"},                              // 409
		wire.Request{Op: wire.OpIncr, Key: "c", Value: []byte("1"), TTL: -5}, // 400
		wire.Request{Op: wire.OpGet, Key: "c"},                               // plain get
	)
	want := []uint16{200, 200, 400, 400, 200, 200, 404, 200, 409, 400, 200}
	for i, r := range res {
		if r.Code != want[i] || r.Code != 200 && r.Error == "" {
			t.Fatalf("op %d: %+v, want code %d with a reason if not 200", i, r, want[i])
		}
	}
	if string(res[0].Value) != "1" || string(res[1].Value) != "-7" || res[1].Version <= res[0].Version {
		t.Fatalf("incr results %+v, %+v", res[0], res[1])
	}
	if len(res[4].Value) != 0 || res[4].Expires == 0 || res[4].Version <= res[1].Version {
		t.Fatalf("touch result %+v: want no value, an expiry and a new version", res[4])
	}
	touched := res[5]
	if string(touched.Value) != "-7" || touched.Version <= res[4].Version || touched.Expires <= res[4].Expires {
		t.Fatalf("get with a TTL: %+v, want the value, a newer version and a later expiry than %+v", touched, res[4])
	}
	if got := res[10]; got.Version != touched.Version || got.Expires != touched.Expires {
		t.Fatalf("a plain get after it: %+v, want the touch's version and expiry", got)
	}
}
