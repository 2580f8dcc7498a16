package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/roostkv/roost/node"
)

// catalogHeartbeat and catalogDeadAfter make the catalog test's nodes
// declare a silent peer dead within 1.2 s.
const (
	catalogHeartbeat = 200 * time.Millisecond
	catalogDeadAfter = 6
)

// catalogCluster starts size `roost serve` processes with their HTTP APIs
// on, and returns a consul client per node.
func catalogCluster(t *testing.T, size int) (*procCluster, map[string]*api.Client) {
	t.Helper()
	c := newProcCluster(t, procClusterOptions{Size: size, Args: []string{
		"--heartbeat-interval", catalogHeartbeat.String(), "--dead-after", fmt.Sprint(catalogDeadAfter)}})
	clients := map[string]*api.Client{}
	for _, name := range c.names {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		c.extra[name] = []string{"--http", addr}
		cl, err := api.NewClient(&api.Config{Address: addr})
		if err != nil {
			t.Fatal(err)
		}
		clients[name] = cl
	}
	for _, name := range c.names {
		c.launch(name)
	}
	c.waitFormed(20 * time.Second)
	return c, clients
}

// ids lists the service IDs of health entries, sorted, with their
// aggregated status: "web-1:passing".
func ids(es []*api.ServiceEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Service.ID+":"+e.Checks.AggregatedStatus())
	}
	slices.Sort(out)
	return out
}

// TestCatalogConsul, with the official consul client: two instances of
// web on two nodes with TTL checks are listed passing; one stops passing
// and ?passing lists the other; its node is killed (a real process) and it
// leaves the catalog within the dead-after time; a blocking
// Health().Service on a third node wakes on each change.
func TestCatalogConsul(t *testing.T) {
	// Not parallel: a killed node's service must leave within dead-after + 1 s.
	if testing.Short() {
		// The race step runs -short: this test drives only roost serve
		// processes (built without -race), so -race in the test binary
		// checks none of Roost's code. The full suite runs it.
		t.Skip("-short: drives only roost serve processes")
	}
	c, cl := catalogCluster(t, 3)
	for i, name := range []string{"n1", "n2"} {
		reg := &api.AgentServiceRegistration{
			ID: fmt.Sprintf("web-%d", i+1), Name: "web", Port: 8080 + i, Address: "127.0.0.1", Tags: []string{"v1"},
			Meta: map[string]string{"node": name}, Check: &api.AgentServiceCheck{TTL: "30s"},
		}
		if err := cl[name].Agent().ServiceRegister(reg); err != nil {
			t.Fatalf("register %s on %s: %v", reg.ID, name, err)
		}
		if err := cl[name].Agent().UpdateTTL("service:"+reg.ID, "ready", api.HealthPassing); err != nil {
			t.Fatalf("pass %s: %v", reg.ID, err)
		}
	}
	health := cl["n3"].Health()
	eventually(t, 5*time.Second, func() error {
		es, _, err := health.Service("web", "", true, nil)
		if got := ids(es); err != nil || !slices.Equal(got, []string{"web-1:passing", "web-2:passing"}) {
			return fmt.Errorf("passing web: %v, %v", got, err)
		}
		return nil
	})
	// The agent and catalog views agree.
	if svcs, err := cl["n1"].Agent().Services(); err != nil || len(svcs) != 1 || svcs["web-1"] == nil || svcs["web-1"].Port != 8080 {
		t.Fatalf("n1's agent services: %v, %v", svcs, err)
	}
	cs, _, err := cl["n3"].Catalog().Service("web", "v1", nil)
	if err != nil || len(cs) != 2 || cs[0].Node != "n1" || cs[0].ServiceID != "web-1" || cs[1].ServicePort != 8081 {
		t.Fatalf("catalog service web?tag=v1: %+v, %v", cs, err)
	}
	names, _, err := cl["n2"].Catalog().Services(nil)
	if err != nil || !slices.Equal(names["web"], []string{"v1"}) || names["roost"] == nil {
		t.Fatalf("catalog services: %v, %v", names, err)
	}

	// A blocking reader on n3 records every answer.
	_, meta, err := health.Service("web", "", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		ids   []string
		index uint64
		took  time.Duration
	}
	answers := make(chan answer, 16)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		index := meta.LastIndex
		for {
			start := time.Now()
			es, qm, err := health.Service("web", "", false, &api.QueryOptions{WaitIndex: index, WaitTime: 20 * time.Second})
			select {
			case <-stop:
				return
			default:
			}
			if err != nil {
				t.Logf("blocking query: %v after %s", err, time.Since(start))
				time.Sleep(50 * time.Millisecond)
				continue
			}
			index = qm.LastIndex
			answers <- answer{ids(es), qm.LastIndex, time.Since(start)}
		}
	}()
	// next waits for the blocking reader's answer that shows want.
	next := func(what string, want []string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case a := <-answers:
				if a.took > 15*time.Second {
					t.Fatalf("%s: the blocking query answered only at its wait (%s)", what, a.took)
				}
				if slices.Equal(a.ids, want) {
					t.Logf("%s: blocking query woke after %s with %v (index %d)", what, a.took.Round(time.Millisecond), a.ids, a.index)
					return
				}
			case <-deadline:
				t.Fatalf("%s: the blocking query did not wake with %v", what, want)
			}
		}
	}

	// web-2 stops passing.
	if err := cl["n2"].Agent().FailTTL("service:web-2", "overloaded"); err != nil {
		t.Fatal(err)
	}
	next("web-2 fails", []string{"web-1:passing", "web-2:critical"})
	es, _, err := health.Service("web", "", true, nil)
	if got := ids(es); err != nil || !slices.Equal(got, []string{"web-1:passing"}) {
		t.Fatalf("passing after web-2 failed: %v, %v", got, err)
	}
	// The pick subject answers the one passing instance.
	nc := dialURL(t, c.url("n3"))
	for range 3 {
		msg, err := nc.Request("roost.svc.pick.web", nil, 5*time.Second)
		var picked api.ServiceEntry
		if err != nil || json.Unmarshal(msg.Data, &picked) != nil || picked.Service == nil || picked.Service.ID != "web-1" {
			t.Fatalf("pick web: %v %v", msg, err)
		}
	}
	if msg, err := nc.Request("roost.svc.pick.nope", nil, 5*time.Second); err != nil || msg.Header.Get("Nats-Service-Error-Code") != "404" {
		t.Fatalf("pick of a service with no instance: %v %v, want a 404", msg, err)
	}

	// web-2 passes again, then its node dies.
	if err := cl["n2"].Agent().PassTTL("service:web-2", ""); err != nil {
		t.Fatal(err)
	}
	next("web-2 passes", []string{"web-1:passing", "web-2:passing"})
	killed := time.Now()
	c.kill("n2")
	next("n2 killed", []string{"web-1:passing"})
	deadAfter := catalogDeadAfter * catalogHeartbeat
	if took := time.Since(killed); took > deadAfter+time.Second {
		t.Errorf("web-2 left the catalog %s after its node was killed; dead-after is %s", took, deadAfter)
	} else {
		t.Logf("web-2 left the catalog %s after its node was killed (dead-after %s)", took.Round(time.Millisecond), deadAfter)
	}
	names, _, err = cl["n1"].Catalog().Services(nil)
	if err != nil || len(names) != 2 {
		t.Fatalf("catalog services after the kill: %v, %v", names, err)
	}
	roosts, _, err := cl["n1"].Catalog().Service("roost", "", nil)
	var nodes []string
	for _, s := range roosts {
		nodes = append(nodes, s.Node)
	}
	if err != nil || strings.Join(nodes, ",") != "n1,n3" {
		t.Fatalf("roost's own services after the kill: %v, %v", nodes, err)
	}
}

// TestCatalogKeysApart: the catalog's records live in the store under the
// reserved prefix, yet no user listing shows them (consul KV recurse and
// keys, binary scans), a KV prefix in the reserved space is refused, and a
// store full of user data under --max-memory never evicts them.
func TestCatalogKeysApart(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *node.Config) { c.MaxMemory = 8 << 20 })
	cl := agentConsul(t, n, "")
	if err := cl.Agent().ServiceRegister(&api.AgentServiceRegistration{ID: "web-1", Name: "web", Check: &api.AgentServiceCheck{TTL: "1h", Status: "passing"}}); err != nil {
		t.Fatal(err)
	}
	if n.StoreStats().Pinned != 2 { // web-1 and the node's own "roost"
		t.Fatalf("pinned entries: %+v, want the 2 catalog records", n.StoreStats())
	}
	kv := cl.KV()
	mustPut(t, kv, &api.KVPair{Key: "user", Value: []byte("x")})
	pairs, _, err := kv.List("", nil)
	if err != nil || len(pairs) != 1 || pairs[0].Key != "user" {
		t.Fatalf("KV list of everything: %v, %v; want only the user key", pairs, err)
	}
	keys, _, err := kv.Keys("", "", nil)
	if err != nil || !slices.Equal(keys, []string{"user"}) {
		t.Fatalf("KV keys: %v, %v", keys, err)
	}
	if code, body := agentDo(t, n, "GET", "/v1/kv/%00roost/?recurse", ""); code != 400 {
		t.Fatalf("KV recurse of the reserved prefix: %d %s, want 400", code, body)
	}
	c := dialClient(t, n)
	items, err := c.Keys(context.Background(), "")
	if err != nil || !slices.Equal(items, []string{"user"}) {
		t.Fatalf("scan keys: %v, %v", items, err)
	}

	// 32 MiB of user data into 8 MiB: evictions, and the catalog stays.
	nc := connect(t, n)
	value := make([]byte, 64<<10)
	for i := range 512 {
		if r := request(t, nc, fmt.Sprintf("roost.set.fill-%d", i), value); r.code != 200 {
			t.Fatalf("set fill-%d: %d %s", i, r.code, r.err)
		}
	}
	if st := n.StoreStats(); st.Evictions == 0 || st.Pinned != 2 {
		t.Fatalf("after the fill: %+v; want evictions and the 2 pinned records", st)
	}
	es, _, err := cl.Health().Service("web", "", true, nil)
	if err != nil || len(es) != 1 || es[0].Service.ID != "web-1" {
		t.Fatalf("web after the fill: %v, %v", es, err)
	}
}

// TestCatalogChecks: a TTL check lapses to critical by itself, an HTTP check
// follows what its endpoint answers, a deregistered service leaves, and bad
// registrations are refused with a reason.
func TestCatalogChecks(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	cl := agentConsul(t, n, "")
	var status atomic.Int32
	status.Store(http.StatusOK)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(int(status.Load())) }))
	t.Cleanup(target.Close)
	for _, reg := range []*api.AgentServiceRegistration{
		{ID: "ttl-1", Name: "ttl", Check: &api.AgentServiceCheck{TTL: "2s", Status: "passing"}},
		{ID: "http-1", Name: "http", Check: &api.AgentServiceCheck{HTTP: target.URL, Interval: "1s", Timeout: "1s"}},
	} {
		if err := cl.Agent().ServiceRegister(reg); err != nil {
			t.Fatalf("register %s: %v", reg.ID, err)
		}
	}
	statusOf := func(name string) string {
		es, _, err := cl.Health().Service(name, "", false, nil)
		if err != nil || len(es) != 1 {
			return fmt.Sprintf("%v %v", es, err)
		}
		return es[0].Checks.AggregatedStatus()
	}
	want := func(name, status string, within time.Duration) {
		t.Helper()
		eventually(t, within, func() error {
			if got := statusOf(name); got != status {
				return fmt.Errorf("%s is %s, want %s", name, got, status)
			}
			return nil
		})
	}
	if got := statusOf("ttl"); got != "passing" {
		t.Fatalf("ttl right after registering: %s", got)
	}
	want("ttl", "critical", 5*time.Second) // no pass within 2 s
	want("http", "passing", 3*time.Second) // polled at once
	status.Store(http.StatusInternalServerError)
	want("http", "critical", 3*time.Second)
	status.Store(http.StatusTooManyRequests)
	want("http", "warning", 3*time.Second)
	hcs, _, err := cl.Health().Checks("http", nil)
	if err != nil || len(hcs) != 1 || hcs[0].CheckID != "service:http-1" || hcs[0].Status != "warning" || hcs[0].Type != "http" {
		t.Fatalf("health checks of http: %v, %v", hcs, err)
	}
	checks, err := cl.Agent().Checks()
	if err != nil || checks["service:http-1"] == nil || !strings.Contains(checks["service:http-1"].Output, "429") {
		t.Fatalf("agent checks: %v, %v", checks, err)
	}

	if err := cl.Agent().ServiceDeregister("ttl-1"); err != nil {
		t.Fatal(err)
	}
	if es, _, err := cl.Health().Service("ttl", "", false, nil); err != nil || len(es) != 0 {
		t.Fatalf("ttl after deregister: %v, %v", es, err)
	}
	for _, tc := range []struct{ method, path, body, reason string }{
		{"PUT", "/v1/agent/service/deregister/nope", "", "Unknown service ID"},
		{"PUT", "/v1/agent/check/pass/nope", "", "unknown check ID"},
		{"PUT", "/v1/agent/check/pass/service:http-1", "", "HTTP check"},
		{"PUT", "/v1/agent/service/register", `{"Name":`, "bad registration"},
		{"PUT", "/v1/agent/service/register", `{"ID":"x"}`, "missing service name"},
		{"PUT", "/v1/agent/service/register", `{"Name":"x","Check":{"TCP":"a:1","Interval":"1s"}}`, "TTL and HTTP checks only"},
		{"PUT", "/v1/agent/service/register", `{"Name":"roost"}`, "node's own service"},
		{"GET", "/v1/health/service/http?passing=maybe", "", "want true or false"},
	} {
		code, body := agentDo(t, n, tc.method, tc.path, tc.body)
		if code/100 != 4 || !strings.Contains(body, tc.reason) {
			t.Errorf("%s %s %s: %d %q, want a 4xx saying %q", tc.method, tc.path, tc.body, code, body, tc.reason)
		}
	}
}
