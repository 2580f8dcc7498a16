package integration

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"encoding/json"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/node"
	"github.com/roostkv/roost/partition"
)

// nodeDo sends method path with body to node n over HTTP (httpDo).
func nodeDo(t *testing.T, n *node.Node, method, path, body string) (int, []byte) {
	t.Helper()
	code, b := httpDo(t, method, "http://"+n.HTTPAddr()+path, body)
	return code, []byte(b)
}

// configOf returns node name's settings from a ConfigReply.
func configOf(t *testing.T, reply node.ConfigReply, name string) node.NodeConfig {
	t.Helper()
	for _, nc := range reply.Nodes {
		if nc.Node == name {
			return nc
		}
	}
	t.Fatalf("no node %s in %+v", name, reply.Nodes)
	return node.NodeConfig{}
}

// TestConfigPushByTag: on a cluster of three in-process nodes in zones a,
// a and b, each holding over 64 MiB, PUT /v1/roost/config?tag=zone:a
// {"max_memory":"64MiB"} (sent to the zone-b node) makes both zone-a
// nodes evict down to 64 MiB within 2 s, and not the zone-b node (whose
// limit stays and which keeps the keys it leads; its copies of zone a's
// partitions follow their primaries' evictions, docs/replication.md,
// "Eviction and copies"); GET
// shows where each value came from; a fourth node started with zone=a
// applies the rule before it is ready; removing the rule restores the
// limit. Other settings, the bulk re-tag and bad input ride along.
func TestConfigPushByTag(t *testing.T) {
	// Not parallel: it fills three nodes with 110 MiB each and loads the machine.
	if testing.Short() {
		// Under -race (CI's race step runs -short) filling three nodes past
		// 64 MiB takes over a minute and a fourth node's first read of the
		// rules outlasts its start-up bound; the full suite runs it.
		t.Skip("-short: fills three nodes with 110 MiB each")
	}
	const limit = 64 << 20
	zones := []string{"a", "a", "b"}
	levels := make([]*slog.LevelVar, 4)
	nodes := startCluster(t, 3, func(i int, c *node.Config) {
		c.Tags = map[string]string{"zone": zones[i]}
		levels[i] = new(slog.LevelVar)
		c.LogLevel = levels[i]
		c.Sources = map[string]string{node.SettingMaxMemory: "flag"}
		c.HeartbeatInterval = 500 * time.Millisecond // not fastBeats: the fill loads the machine
	})
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	// About 110 MiB of 256 KiB values with ack=all: with 2 copies of each,
	// every node holds about 73 MiB.
	value := make([]byte, 256<<10)
	var wg sync.WaitGroup
	next := make(chan int)
	for w := range 6 {
		nc := connect(t, nodes[w%3])
		wg.Go(func() {
			for i := range next {
				if r, err := send(nc, fmt.Sprintf("roost.set.fill.%d", i), value, 10*time.Second, "Roost-Ack", "all"); err != nil || r.code != 200 {
					t.Errorf("fill %d: %v %+v", i, err, r.err)
				}
			}
		})
	}
	for i := range 440 {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, n := range nodes {
		if st := n.StoreStats(); st.Bytes <= limit {
			t.Fatalf("%s holds %d bytes, not over %d: the test needs more data", n.Name(), st.Bytes, limit)
		}
	}

	// Bad input first: nothing is stored.
	for _, c := range []struct{ path, body string }{
		{"/v1/roost/config?tag=zone:a", `{"max_memory":"lots"}`},
		{"/v1/roost/config?tag=zone:a", `{"replicas":3}`},
		{"/v1/roost/config?tag=zone:a&node=n1", `{"log_level":"debug"}`},
		{"/v1/roost/config?tag=zone", `{"log_level":"debug"}`},
		{"/v1/roost/config", `{}`},
		{"/v1/roost/config", `[1]`},
	} {
		if code, body := nodeDo(t, n3, http.MethodPut, c.path, c.body); code != http.StatusBadRequest {
			t.Errorf("PUT %s %s: %d %s, want 400", c.path, c.body, code, body)
		}
	}
	if code, _ := nodeDo(t, n3, http.MethodDelete, "/v1/roost/config?node=n9", ""); code != http.StatusNotFound {
		t.Errorf("DELETE of a rule that does not exist: %d, want 404", code)
	}

	// The keys zone b's node leads.
	st3 := n3.Status()
	leads := map[int]bool{}
	for _, p := range st3.Cluster.PrimaryOf {
		leads[p] = true
	}
	var own []string
	for i := range 440 {
		if key := fmt.Sprintf("fill.%d", i); leads[partition.Of(key, st3.Partitions)] {
			own = append(own, key)
		}
	}
	if len(own) == 0 {
		t.Fatal("zone b's node leads none of the keys")
	}

	start := time.Now()
	code, body := nodeDo(t, n3, http.MethodPut, "/v1/roost/config?tag=zone:a", `{"max_memory":"64MiB"}`)
	if code != http.StatusOK {
		t.Fatalf("PUT config: %d %s", code, body)
	}
	var reply node.ConfigReply
	if err := json.Unmarshal(body, &reply); err != nil {
		t.Fatal(err)
	}
	if len(reply.Nodes) != 2 || len(reply.Pending) != 0 || len(reply.Rules) != 1 {
		t.Errorf("PUT answer: nodes %+v, pending %v, rules %+v; want n1 and n2 applied", reply.Nodes, reply.Pending, reply.Rules)
	}
	eventually(t, 2*time.Second-time.Since(start), func() error {
		for _, n := range []*node.Node{n1, n2} {
			if st := n.StoreStats(); st.MaxBytes != limit || st.Bytes+st.TombstoneBytes > limit {
				return fmt.Errorf("%s: %d bytes, limit %d", n.Name(), st.Bytes+st.TombstoneBytes, st.MaxBytes)
			}
		}
		return nil
	})
	t.Logf("zone a evicted down to 64 MiB %s after the PUT", time.Since(start).Round(time.Millisecond))
	if st := n3.StoreStats(); st.MaxBytes == limit {
		t.Errorf("zone-b node n3's limit changed: %+v", st)
	}
	// It keeps the keys it leads, but for the few a zone-a node had to
	// evict as a replica: a 4 MiB shard holds 15 of these values, and one
	// holding only copies evicts one anyway, which its primary then evicts
	// for every copy. Had the rule applied to n3 it would lose about a
	// quarter of them.
	nc3 := connect(t, n3)
	kept := 0
	for _, key := range own {
		if r := request(t, nc3, "roost.get."+key, nil); r.code == 200 {
			kept++
		}
	}
	if kept < len(own)*9/10 {
		t.Errorf("zone-b node n3 keeps %d of the %d keys it leads", kept, len(own))
	}
	t.Logf("zone-b node n3 keeps %d of the %d keys it leads", kept, len(own))

	code, body = nodeDo(t, n1, http.MethodGet, "/v1/roost/config", "")
	if err := json.Unmarshal(body, &reply); code != 200 || err != nil {
		t.Fatalf("GET config: %d %s", code, body)
	}
	if s := configOf(t, reply, "n2").Settings[node.SettingMaxMemory]; s.Source != "rule tag zone:a" || s.Value != float64(limit) {
		t.Errorf("n2 max_memory %+v, want 64 MiB from rule tag zone:a", s)
	}
	if s := configOf(t, reply, "n3").Settings[node.SettingMaxMemory]; s.Source != "flag" {
		t.Errorf("n3 max_memory %+v, want from flag", s)
	}

	// A fourth node in zone a applies the rule before it is ready. The fill
	// goes first, so that its join moves little data.
	next = make(chan int)
	for w := range 6 {
		nc := connect(t, nodes[w%3])
		wg.Go(func() {
			for i := range next {
				if r, err := send(nc, fmt.Sprintf("roost.del.fill.%d", i), nil, 10*time.Second); err != nil || r.code != 200 {
					t.Errorf("delete fill %d: %v %+v", i, err, r.err)
				}
			}
		})
	}
	for i := range 440 {
		next <- i
	}
	close(next)
	wg.Wait()
	n4 := startNode(t, func(c *node.Config) {
		c.Name = "n4"
		c.ClusterListen = "127.0.0.1:-1"
		c.Join = []string{n1.Bus().ClusterAddr()}
		c.Tags = map[string]string{"zone": "a"}
		c.HeartbeatInterval = 500 * time.Millisecond
	})
	if st := n4.StoreStats(); st.MaxBytes != limit {
		t.Errorf("n4 (zone a) started with max bytes %d, want %d", st.MaxBytes, limit)
	}
	nodes = append(nodes, n4)
	waitMembers(t, nodes, 4, 5*time.Second)

	// Other settings: log level for one node, pushed tags, bulk re-tag.
	if code, body := nodeDo(t, n4, http.MethodPut, "/v1/roost/config?node=n1", `{"log_level":"debug"}`); code != 200 {
		t.Fatalf("PUT log_level: %d %s", code, body)
	}
	if levels[0].Level() != slog.LevelDebug || levels[1].Level() != slog.LevelInfo {
		t.Errorf("log levels n1 %v, n2 %v; want debug, info", levels[0].Level(), levels[1].Level())
	}
	if code, body := nodeDo(t, n4, http.MethodPut, "/v1/roost/config?tag=zone:b", `{"tags":{"tier":"cold"}}`); code != 200 {
		t.Fatalf("PUT tags: %d %s", code, body)
	}
	if code, body := nodeDo(t, n1, http.MethodPut, "/v1/roost/members/tags?tag=zone:b", `{"zone":"b","rack":"9"}`); code != 200 || !strings.Contains(string(body), `"done":["n3"]`) {
		t.Fatalf("bulk re-tag: %d %s", code, body)
	}
	eventually(t, 2*time.Second, func() error {
		for _, mi := range n1.Members().Members {
			if mi.Name == "n3" && (mi.Tags["tier"] != "cold" || mi.Tags["rack"] != "9" || mi.Tags["zone"] != "b") {
				return fmt.Errorf("n1 sees n3 with tags %v", mi.Tags)
			}
		}
		return nil
	})

	// Unset: zone a goes back to its own limit.
	if code, body := nodeDo(t, n3, http.MethodDelete, "/v1/roost/config?tag=zone:a", ""); code != 200 {
		t.Fatalf("DELETE config: %d %s", code, body)
	}
	eventually(t, 2*time.Second, func() error {
		for _, n := range []*node.Node{n1, n2, n4} {
			if st := n.StoreStats(); st.MaxBytes != 256<<20 {
				return fmt.Errorf("%s still at limit %d", n.Name(), st.MaxBytes)
			}
		}
		return nil
	})
}

// TestBulkForceLeaveByTag: PUT /v1/roost/members/force-leave?tag=k:v
// forces out the dead members with that tag and skips the live ones; a
// bulk operation without a filter is refused.
func TestBulkForceLeaveByTag(t *testing.T) {
	t.Parallel()
	zones := []string{"a", "a", "b"}
	nodes := startCluster(t, 3, func(i int, c *node.Config) { c.Tags = map[string]string{"zone": zones[i]} })
	n1 := nodes[0]
	if code, _ := nodeDo(t, n1, http.MethodPut, "/v1/roost/members/force-leave", ""); code != http.StatusBadRequest {
		t.Errorf("bulk force-leave without a filter: %d, want 400", code)
	}
	if code, _ := nodeDo(t, n1, http.MethodPut, "/v1/roost/members/tags", `{"zone":"x"}`); code != http.StatusBadRequest {
		t.Errorf("bulk re-tag without a filter: %d, want 400", code)
	}
	nodes[2].Kill()
	eventually(t, 5*time.Second, func() error {
		if s := memberStatus(n1, "n3"); s != "dead" {
			return fmt.Errorf("n1 sees n3 %s", s)
		}
		return nil
	})
	code, body := nodeDo(t, n1, http.MethodPut, "/v1/roost/members/force-leave?tag=zone:a", "")
	var reply node.BulkReply
	if err := json.Unmarshal(body, &reply); code != 200 || err != nil || len(reply.Done) != 0 || len(reply.Skipped) != 2 {
		t.Fatalf("force-leave of zone a (alive): %d %s", code, body)
	}
	code, body = nodeDo(t, n1, http.MethodPut, "/v1/roost/members/force-leave?tag=zone:b", "")
	if err := json.Unmarshal(body, &reply); code != 200 || err != nil || len(reply.Done) != 1 || reply.Done[0] != "n3" {
		t.Fatalf("force-leave of zone b: %d %s", code, body)
	}
	for _, n := range nodes[:2] {
		if s := memberStatus(n, "n3"); s != "left" {
			t.Errorf("%s sees n3 %s after the force-leave, want left", n.Name(), s)
		}
	}
}

// TestConfigLoaderTTLs: load_ttl and negative_ttl pushed by a rule apply to
// the next load: GET shows them with the rule as their source, a loaded
// value takes the pushed TTL, and with negative_ttl 0 a loader's 404 is
// not remembered (the loader is asked again).
func TestConfigLoaderTTLs(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)
	var calls atomic.Int64
	if _, err := nc.Subscribe("roost.load.cfg.>", func(m *nats.Msg) {
		calls.Add(1)
		reply := nats.NewMsg(m.Reply)
		if strings.HasSuffix(m.Subject, ".missing") {
			reply.Header.Set("Nats-Service-Error-Code", "404")
			reply.Header.Set("Nats-Service-Error", "no such thing")
		} else {
			reply.Data = []byte("loaded")
		}
		_ = m.RespondMsg(reply)
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if code, body := nodeDo(t, n, "PUT", "/v1/roost/config", `{"load_ttl":"1h","negative_ttl":0}`); code != 200 {
		t.Fatalf("PUT config: %d %s", code, body)
	}
	eventually(t, 2*time.Second, func() error {
		_, body := nodeDo(t, n, "GET", "/v1/roost/config", "")
		var reply node.ConfigReply
		if err := json.Unmarshal(body, &reply); err != nil {
			return err
		}
		s := configOf(t, reply, n.Name()).Settings
		if s["load_ttl"].Value != "1h0m0s" || s["negative_ttl"].Value != "0s" || s["load_ttl"].Source != "rule all" {
			return fmt.Errorf("settings %+v", s)
		}
		return nil
	})
	r := request(t, nc, "roost.get.cfg.k", nil)
	if r.code != 200 || string(r.body) != "loaded" {
		t.Fatalf("get: %d %q (%s)", r.code, r.body, r.err)
	}
	r = request(t, nc, "roost.get.cfg.k", nil) // a hit, with the expiry the load gave it
	expires, err := time.Parse(time.RFC3339, r.hdr.Get("Roost-Expires"))
	if err != nil {
		t.Fatalf("Roost-Expires %q: %v", r.hdr.Get("Roost-Expires"), err)
	}
	if left := time.Until(expires); left < 59*time.Minute || left > time.Hour+time.Second {
		t.Fatalf("loaded value expires in %s, want the pushed load_ttl of 1h", left)
	}
	for range 2 {
		wantCode(t, "get of a key the loader does not have", request(t, nc, "roost.get.cfg.missing", nil), 404)
	}
	if got := calls.Load(); got != 3 {
		t.Fatalf("loader asked %d times, want 3: with negative_ttl 0 its 404 is not remembered", got)
	}
}
