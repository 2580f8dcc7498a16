package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

// plainLoader is a loader written with nothing but nats.go, as a user in
// any language would write one (docs/PROTOCOL.md, "Loaders"): a queue
// subscription on roost.load.lt.>, answering by the key's second token:
//
//	lt.ok.*      the value "v:<key>" after delay, with Roost-TTL ttl
//	lt.missing.* a micro 404 after delay
//	lt.slow.*    nothing (the node's --load-timeout passes), unless answer is set
//
// and counting its calls per key.
type plainLoader struct {
	delay  time.Duration
	ttl    string
	answer atomic.Bool // lt.slow.* answers at once

	mu    sync.Mutex
	calls map[string]int
}

func startPlainLoader(t *testing.T, nc *nats.Conn, delay time.Duration, ttl string) *plainLoader {
	t.Helper()
	l := &plainLoader{delay: delay, ttl: ttl, calls: map[string]int{}}
	_, err := nc.QueueSubscribe("roost.load.lt.>", "loaders", func(m *nats.Msg) {
		key := strings.TrimPrefix(m.Subject, "roost.load.")
		l.mu.Lock()
		l.calls[key]++
		l.mu.Unlock()
		go func() {
			reply := nats.NewMsg(m.Reply)
			switch {
			case strings.HasPrefix(key, "lt.ok."):
				time.Sleep(l.delay) // a slow backend, so that every get waits for this one load
				reply.Data = []byte("v:" + key)
				reply.Header.Set("Roost-TTL", l.ttl)
				reply.Header.Set("Roost-Flags", "7")
			case strings.HasPrefix(key, "lt.missing."):
				time.Sleep(l.delay)
				reply.Header.Set("Nats-Service-Error-Code", "404")
				reply.Header.Set("Nats-Service-Error", "no such user")
			case strings.HasPrefix(key, "lt.slow.") && l.answer.Load():
				reply.Data = []byte("late:" + key)
			default:
				return // never answers: the node times out
			}
			_ = m.RespondMsg(reply)
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *plainLoader) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[key]
}

// waitLoaderInterest waits until every node's server knows of a loader for
// key (a subscription reaches the other servers over the routes).
func waitLoaderInterest(t *testing.T, nodes []*node.Node, key string) {
	t.Helper()
	eventually(t, 5*time.Second, func() error {
		for _, n := range nodes {
			if ok, _ := n.Bus().LoadInterest("roost.load."+key, "roost.noload."+key, "roost.load."); !ok {
				return fmt.Errorf("%s does not see the loader yet", n.Name())
			}
		}
		return nil
	})
}

// httpBody GETs url and returns its body.
func httpBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// getOutcome is what one get of the storm answered: code and value.
type getOutcome struct {
	via   string
	code  int
	value string
	err   string
}

// storm gets key count times at once, spread over the nodes and over the
// text API (NATS requests), the Go client and the consul HTTP client.
func storm(t *testing.T, nodes []*node.Node, key string, count int) []getOutcome {
	t.Helper()
	type door struct {
		name string
		get  func() getOutcome
	}
	var doors []door
	for _, n := range nodes {
		nc := connect(t, n)
		c, err := client.New(nc, client.WithTimeout(5*time.Second), client.WithBatching(false)) // every get its own request, all at once
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		cc, err := api.NewClient(&api.Config{Address: n.HTTPAddr()})
		if err != nil {
			t.Fatal(err)
		}
		kv := cc.KV()
		doors = append(doors,
			door{"text@" + n.Name(), func() getOutcome {
				r, err := send(nc, "roost.get."+key, nil, 5*time.Second)
				if err != nil {
					return getOutcome{code: -1, err: err.Error()}
				}
				return getOutcome{code: r.code, value: string(r.body), err: r.err}
			}},
			door{"client@" + n.Name(), func() getOutcome {
				it, err := c.Get(context.Background(), key)
				switch {
				case err == nil:
					return getOutcome{code: 200, value: string(it.Value)}
				case errors.Is(err, client.ErrNotFound):
					return getOutcome{code: 404, err: err.Error()}
				case errors.Is(err, client.ErrNotReady):
					return getOutcome{code: 503, err: err.Error()}
				}
				return getOutcome{code: -1, err: err.Error()}
			}},
			door{"consul@" + n.Name(), func() getOutcome {
				pair, _, err := kv.Get(key, nil)
				switch {
				case err != nil && strings.Contains(err.Error(), "503"):
					return getOutcome{code: 503, err: err.Error()}
				case err != nil:
					return getOutcome{code: -1, err: err.Error()}
				case pair == nil:
					return getOutcome{code: 404}
				}
				return getOutcome{code: 200, value: string(pair.Value)}
			}},
		)
	}
	out := make([]getOutcome, count)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range count {
		d := doors[i%len(doors)]
		wg.Go(func() {
			<-start
			out[i] = d.get()
			out[i].via = d.name
		})
	}
	close(start)
	wg.Wait()
	return out
}

// wantAll fails unless every getOutcome has code (and value, for a 200).
func wantAll(t *testing.T, what string, outs []getOutcome, code int, value string) {
	t.Helper()
	bad := 0
	for _, o := range outs {
		if o.code != code || code == 200 && o.value != value {
			if bad < 5 {
				t.Errorf("%s: via %s: code %d value %q (%s), want %d %q", what, o.via, o.code, o.value, o.err, code, value)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("%s: %d of %d gets answered otherwise", what, bad, len(outs))
	}
}

func TestLoaderSingleFlightAcrossTheCluster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		// 500 gets at once on three nodes under -race: heartbeats are
		// missed and partitions move mid-stampede. TestServeLoader's
		// concurrent gets cover the same code under -race on one node.
		t.Skip("-short: the cluster stampede runs in the full suite")
	}
	nodes := startCluster(t, 3, func(_ int, c *node.Config) {
		c.LoadTimeout = 2 * time.Second // room for a loaded machine; the slow key waits it out
		c.NegativeTTL = 30 * time.Second
		// Slower beats than the helper's 100 ms: 500 gets at once on a busy
		// machine must not delay heartbeats into a primary change.
		c.HeartbeatInterval = 250 * time.Millisecond
	})
	// A TTL long enough that a wave of gets on a loaded machine ends before
	// the value expires, short enough to wait for.
	loader := startPlainLoader(t, connect(t, nodes[1]), 100*time.Millisecond, "2s")
	waitLoaderInterest(t, nodes, "lt.ok.k")

	t.Run("stampede", func(t *testing.T) {
		key := "lt.ok.k"
		wantAll(t, "first wave", storm(t, nodes, key, 500), 200, "v:"+key)
		if got := loader.count(key); got != 1 {
			t.Fatalf("loader called %d times for 500 concurrent gets, want 1", got)
		}
		// The value is stored and replicated like a set: the next get is a hit.
		r := request(t, connect(t, nodes[0]), "roost.get."+key, nil)
		wantCode(t, "get after the load", r, 200)
		if r.hdr.Get("Roost-Flags") != "7" || r.hdr.Get("Roost-Expires") == "" {
			t.Fatalf("loaded entry: flags %q expires %q, want the loader's 7 and a TTL", r.hdr.Get("Roost-Flags"), r.hdr.Get("Roost-Expires"))
		}
		if got := loader.count(key); got != 1 {
			t.Fatalf("a hit asked the loader: %d calls", got)
		}
		// Past the loader's Roost-TTL of 2s the value is gone (a key listing
		// reads the store without loading), and the next wave loads it once more.
		cc, err := api.NewClient(&api.Config{Address: nodes[0].HTTPAddr()})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, func() error {
			keys, _, err := cc.KV().Keys(key, "", nil)
			if err != nil || len(keys) > 0 {
				return fmt.Errorf("still stored: %v %v", keys, err)
			}
			return nil
		})
		before := loader.count(key)
		wantAll(t, "second wave", storm(t, nodes, key, 500), 200, "v:"+key)
		if got := loader.count(key) - before; got != 1 {
			t.Fatalf("second wave after the TTL: %d loader calls, want 1", got)
		}
	})

	t.Run("not found", func(t *testing.T) {
		key := "lt.missing.m"
		outs := storm(t, nodes, key, 150)
		wantAll(t, "loader 404", outs, 404, "")
		if got := loader.count(key); got != 1 {
			t.Fatalf("loader called %d times for a key it said is missing, want 1", got)
		}
		wantAll(t, "within --negative-ttl", storm(t, nodes, key, 60), 404, "")
		if got := loader.count(key); got != 1 {
			t.Fatalf("gets within --negative-ttl asked the loader again: %d calls", got)
		}
		// A set clears the negative entry: the value is served, and after a
		// delete the loader is asked again.
		nc := connect(t, nodes[0])
		wantCode(t, "set", request(t, nc, "roost.set."+key, []byte("now")), 200)
		if r := request(t, nc, "roost.get."+key, nil); r.code != 200 || string(r.body) != "now" {
			t.Fatalf("get after set: %d %q", r.code, r.body)
		}
		wantCode(t, "del", request(t, nc, "roost.del."+key, nil), 200)
		wantCode(t, "get after del", request(t, nc, "roost.get."+key, nil), 404)
		if got := loader.count(key); got != 2 {
			t.Fatalf("after a delete the loader was called %d times in all, want 2", got)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		key := "lt.slow.s"
		outs := storm(t, nodes, key, 150)
		wantAll(t, "loader timeout", outs, 503, "")
		for _, o := range outs {
			if o.via[:4] == "text" && !strings.Contains(o.err, "did not answer within") {
				t.Fatalf("503 via %s without the reason: %q", o.via, o.err)
			}
		}
		if got := loader.count(key); got != 1 {
			t.Fatalf("loader called %d times, want 1", got)
		}
		// Nothing was cached, neither value nor 404: the next get asks again.
		loader.answer.Store(true)
		r := request(t, connect(t, nodes[2]), "roost.get."+key, nil)
		if r.code != 200 || string(r.body) != "late:"+key {
			t.Fatalf("get once the loader answers: %d %q (%s)", r.code, r.body, r.err)
		}
		if got := loader.count(key); got != 2 {
			t.Fatalf("loader called %d times in all, want 2", got)
		}
	})

	t.Run("no loader", func(t *testing.T) {
		// A key no loader listens for is a plain miss: nothing is asked.
		r := request(t, connect(t, nodes[0]), "roost.get.other.k", nil)
		wantCode(t, "miss without a loader", r, 404)
		if strings.Contains(r.err, "loader") {
			t.Fatalf("plain miss mentions a loader: %q", r.err)
		}
		var stats node.LoadStats
		for _, n := range nodes {
			s := n.LoadStats()
			stats.Started += s.Started
			stats.NegativeHits += s.NegativeHits
			stats.Joined += s.Joined
		}
		if stats.NegativeHits == 0 || stats.Joined == 0 {
			t.Fatalf("load stats: %+v, want negative hits and joined gets", stats)
		}
	})
}

func TestServeLoader(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *node.Config) { c.LoadTimeout = time.Second })
	var calls sync.Map // key → *atomic.Int32
	count := func(key string) int32 {
		v, _ := calls.LoadOrStore(key, new(atomic.Int32))
		return v.(*atomic.Int32).Load()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var running, most atomic.Int32 // loads of users.batch.* at once, and the most seen
	loader, err := client.ServeLoader(ctx, connect(t, n), "users.>", func(ctx context.Context, key string) ([]byte, client.LoadOptions, error) {
		v, _ := calls.LoadOrStore(key, new(atomic.Int32))
		c := v.(*atomic.Int32).Add(1)
		if strings.HasPrefix(key, "users.batch.") {
			now := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
			}
			time.Sleep(100 * time.Millisecond) // a slow backend
		}
		switch key {
		case "users.missing":
			return nil, client.LoadOptions{}, fmt.Errorf("user lookup: %w", client.ErrLoadNotFound)
		case "users.err":
			return nil, client.LoadOptions{}, errors.New("db down")
		case "users.r":
			return []byte(fmt.Sprintf("r:%d", c)), client.LoadOptions{Refresh: 300 * time.Millisecond, TTL: time.Minute}, nil
		}
		return []byte("u:" + key), client.LoadOptions{Flags: 3, NoExpiry: true}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	nc := connect(t, n)

	r := request(t, nc, "roost.get.users.1", nil)
	if r.code != 200 || string(r.body) != "u:users.1" || r.hdr.Get("Roost-Flags") != "3" || r.hdr.Get("Roost-Expires") != "" {
		t.Fatalf("loaded get: %d %q flags %q expires %q", r.code, r.body, r.hdr.Get("Roost-Flags"), r.hdr.Get("Roost-Expires"))
	}
	if r := request(t, nc, "roost.get.users.missing", nil); r.code != 404 || !strings.Contains(r.err, "loader answered 404") {
		t.Fatalf("ErrLoadNotFound: %d %q", r.code, r.err)
	}
	if r := request(t, nc, "roost.get.users.err", nil); r.code != 503 || !strings.Contains(r.err, "db down") {
		t.Fatalf("loader error: %d %q", r.code, r.err)
	}
	// Concurrent gets of one absent key: one load, every get answered.
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if r, err := send(nc, "roost.get.users.many", nil, 5*time.Second); err != nil || r.code != 200 || string(r.body) != "u:users.many" {
				t.Errorf("concurrent get: %+v %v", r, err)
			}
		})
	}
	wg.Wait()
	if got := count("users.many"); got != 1 {
		t.Fatalf("50 concurrent gets made %d loads, want 1", got)
	}
	// The missing keys of one batch load at once, not one after another.
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys := []string{"users.batch.1", "users.batch.2", "users.batch.3", "users.batch.4", "users.batch.5"}
	items, err := c.MGet(context.Background(), keys...)
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range items {
		if string(it.Value) != "u:"+keys[i] {
			t.Fatalf("MGet[%d] = %q", i, it.Value)
		}
	}
	if most.Load() < 2 {
		t.Fatalf("the 5 loads of one batch ran one at a time (at most %d at once)", most.Load())
	}
	if r := request(t, nc, "roost.get.other", nil); r.code != 404 || count("other") != 0 {
		t.Fatalf("a key outside the pattern: %d, %d loads", r.code, count("other"))
	}

	// Refresh-ahead: reads go on answering the loaded value without
	// waiting; the first read after 300ms reloads it in the background.
	loadedAt := time.Now()
	if r := request(t, nc, "roost.get.users.r", nil); string(r.body) != "r:1" {
		t.Fatalf("first load: %d %q", r.code, r.body)
	}
	eventually(t, 3*time.Second, func() error {
		r := request(t, nc, "roost.get.users.r", nil)
		switch string(r.body) {
		case "r:1":
			return errors.New("not reloaded yet")
		case "r:2":
			if time.Since(loadedAt) < 300*time.Millisecond {
				t.Fatalf("reloaded before its Roost-Refresh of 300ms")
			}
			return nil
		}
		t.Fatalf("refresh-ahead read: %d %q %q", r.code, r.body, r.err)
		return nil
	})
	if got := n.LoadStats().Refreshes; got == 0 {
		t.Fatal("no refresh counted")
	}
	request(t, nc, "roost.get.users.missing", nil) // answered from the negative entry
	metrics := httpBody(t, "http://"+n.HTTPAddr()+"/metrics")
	for _, want := range []string{
		`roost_loads_total{result="loaded"} 9`, // users.1, users.many, 5 users.batch.*, users.r and its refresh
		`roost_loads_total{result="not_found"} 1`,
		`roost_loads_total{result="failed"} 1`,
		`roost_load_negative_hits_total 1`,
		`roost_load_refreshes_total 1`,
		`roost_load_duration_seconds_count 11`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// Found by micro discovery, as `roost loaders` and `nats micro ls` do.
	resp, err := nc.Request("$SRV.INFO."+client.DefaultLoaderService, nil, time.Second)
	if err != nil || !strings.Contains(string(resp.Data), `"subject":"roost.load.users.\u003e"`) && !strings.Contains(string(resp.Data), `"subject":"roost.load.users.>"`) {
		t.Fatalf("$SRV.INFO: %v %s", err, resp.Data)
	}

	loader.Stop()
	attempt := 0
	eventually(t, 2*time.Second, func() error {
		attempt++ // a new key each time: one loaded while the unsubscribe travels stays loaded
		if r := request(t, nc, fmt.Sprintf("roost.get.users.after%d", attempt), nil); r.code != 404 || strings.Contains(r.err, "loader") {
			return fmt.Errorf("after Stop: %d %q", r.code, r.err)
		}
		return nil
	})
}

// TestObserverIsNotALoader: a subscriber on "roost.>" or ">" (someone
// watching the traffic with `nats sub`) receives load requests too, but
// never answers them; a node must not take it for a loader, or every miss
// would wait out --load-timeout and answer 503.
func TestObserverIsNotALoader(t *testing.T) {
	// Not parallel: a miss must be answered within 1 s.
	n := startNode(t, func(c *node.Config) { c.LoadTimeout = 3 * time.Second })
	watcher := connect(t, n)
	for _, subject := range []string{"roost.>", ">", "roost.*.obs.k"} {
		if _, err := watcher.Subscribe(subject, func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	nc := connect(t, n)
	start := time.Now()
	r := request(t, nc, "roost.get.obs.k", nil)
	wantCode(t, "miss with only observers subscribed", r, 404)
	if took := time.Since(start); took > time.Second || strings.Contains(r.err, "loader") {
		t.Fatalf("miss took %s (%q): the observers were taken for a loader", took, r.err)
	}

	// A real loader beside the observers is asked.
	loaders := connect(t, n)
	if _, err := loaders.Subscribe("roost.load.obs.>", func(m *nats.Msg) { _ = m.Respond([]byte("loaded")) }); err != nil {
		t.Fatal(err)
	}
	if err := loaders.Flush(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		r := request(t, nc, "roost.get.obs.k", nil)
		if r.code != 200 || string(r.body) != "loaded" {
			return fmt.Errorf("get with a loader: %d %q (%s)", r.code, r.body, r.err)
		}
		return nil
	})
}

// TestObserverAndRemoteLoader: with an observer on "roost.>" connected to
// one node, a loader connected to another is still found (through the
// interest the second node's server announced on its route).
func TestObserverAndRemoteLoader(t *testing.T) {
	// Not parallel: a miss must be answered within 1 s.
	nodes := startCluster(t, 2, nil)
	watcher := connect(t, nodes[0])
	if _, err := watcher.Subscribe("roost.>", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	loaders := connect(t, nodes[1])
	if _, err := loaders.QueueSubscribe("roost.load.remote.>", "loaders", func(m *nats.Msg) { _ = m.Respond([]byte("from afar")) }); err != nil {
		t.Fatal(err)
	}
	if err := loaders.Flush(); err != nil {
		t.Fatal(err)
	}
	nc := connect(t, nodes[0])
	for i := range 4 {
		key := fmt.Sprintf("remote.k%d", i)
		eventually(t, 5*time.Second, func() error {
			r := request(t, nc, "roost.get."+key, nil)
			if r.code != 200 || string(r.body) != "from afar" {
				return fmt.Errorf("get %s: %d %q (%s)", key, r.code, r.body, r.err)
			}
			return nil
		})
	}
	start := time.Now()
	r := request(t, nc, "roost.get.elsewhere.k", nil)
	wantCode(t, "miss outside the loader's keys", r, 404)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("miss outside the loader's keys took %s: the observer was taken for a loader", took)
	}
}
