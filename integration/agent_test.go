package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/node"
)

// The consul agent and health API, and Roost's members API, against
// in-process clusters, through the official consul client where it fits.

const agentToken = "s3cret"

// consul's member status codes (api.AgentMember.Status, serf's MemberStatus).
const (
	serfAlive  = 1
	serfLeft   = 3
	serfFailed = 4
)

// agentConsul is a consul API client for n's HTTP API.
func agentConsul(t *testing.T, n *node.Node, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: n.HTTPAddr(), Scheme: "http", Token: token})
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	return c
}

// agentDo sends one HTTP request to n and returns the status and body.
func agentDo(t *testing.T, n *node.Node, method, path, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func withToken(i int, c *node.Config) { c.Token = agentToken }

func TestAgentMembersAndHealthState(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, withToken)
	c := agentConsul(t, nodes[0], agentToken)

	members, err := c.Agent().Members(false)
	if err != nil {
		t.Fatalf("Agent().Members: %v", err)
	}
	if len(members) != 3 {
		t.Fatalf("%d members, want 3: %+v", len(members), members)
	}
	for i, m := range members {
		n := nodes[i]
		u, _ := url.Parse(n.ClientURL())
		port, _ := strconv.Atoi(u.Port())
		if m.Name != n.Name() || m.Status != serfAlive || m.Addr != "127.0.0.1" || int(m.Port) != port {
			t.Fatalf("member %d = %s status %d at %s:%d; want %s alive at %s", i, m.Name, m.Status, m.Addr, m.Port, n.Name(), n.ClientURL())
		}
		if m.Tags["role"] != api.MemberTagValueRoleServer || m.Tags["roost_role"] != node.RoleServer || m.Tags["dc"] != "dc1" ||
			m.Tags["id"] != n.ID() || m.Tags["status"] != "alive" || m.Tags["http"] != n.HTTPAddr() {
			t.Fatalf("member %s tags = %v", m.Name, m.Tags)
		}
		if m.ProtocolCur == 0 {
			t.Fatalf("member %s has no protocol version", m.Name)
		}
	}

	checks, meta, err := c.Health().State("any", nil)
	if err != nil {
		t.Fatalf("Health().State(any): %v", err)
	}
	if len(checks) != 3 || meta.LastIndex == 0 {
		t.Fatalf("%d checks (index %d), want 3", len(checks), meta.LastIndex)
	}
	for i, ch := range checks {
		if ch.Node != nodes[i].Name() || ch.CheckID != "serfHealth" || ch.Status != api.HealthPassing {
			t.Fatalf("check %d = %+v", i, ch)
		}
	}
	if checks, _, err := c.Health().State("critical", nil); err != nil || len(checks) != 0 {
		t.Fatalf("critical checks with all alive = %v, %v", checks, err)
	}

	// Auth: members need the token, health does not.
	if _, err := agentConsul(t, nodes[1], "").Agent().Members(false); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("members without a token = %v, want a 403", err)
	}
	for _, hdr := range [][]string{nil, {"X-Consul-Token", "wrong"}, {"Authorization", "Bearer wrong"}} {
		if code, _ := agentDo(t, nodes[1], "GET", "/v1/agent/members", "", hdr...); code != http.StatusForbidden {
			t.Fatalf("members with %v = %d, want 403", hdr, code)
		}
	}
	if code, _ := agentDo(t, nodes[1], "GET", "/v1/agent/members", "", "Authorization", "Bearer "+agentToken); code != http.StatusOK {
		t.Fatalf("members with a bearer token = %d", code)
	}
	if checks, _, err := agentConsul(t, nodes[1], "").Health().State("passing", nil); err != nil || len(checks) != 3 {
		t.Fatalf("health without a token = %d checks, %v; want 3", len(checks), err)
	}
	if code, body := agentDo(t, nodes[1], "GET", "/v1/health/state/bogus", ""); code != http.StatusBadRequest {
		t.Fatalf("health state bogus = %d %q, want 400", code, body)
	}

	// n3 goes silent (its bus closes without a leave): dead, then critical.
	nodes[2].Bus().Close()
	eventually(t, 5*time.Second, func() error {
		for _, n := range nodes[:2] {
			if s := memberStatus(n, "n3"); s != membership.Dead {
				return fmt.Errorf("%s sees n3 %s", n.Name(), s)
			}
		}
		return nil
	})
	members, err = c.Agent().Members(false)
	if err != nil || members[2].Name != "n3" || members[2].Status != serfFailed {
		t.Fatalf("members after n3 died = %+v, %v; want n3 failed (4)", members, err)
	}
	critical, _, err := c.Health().State("critical", nil)
	if err != nil || len(critical) != 1 || critical[0].Node != "n3" {
		t.Fatalf("critical checks = %+v, %v; want n3's", critical, err)
	}
	if passing, _, err := c.Health().State("passing", nil); err != nil || len(passing) != 2 {
		t.Fatalf("passing checks = %d, %v; want 2", len(passing), err)
	}

	// force-leave: refused for a live node, this node and an unknown one;
	// for n3, every live node marks it left before the answer.
	for name, code := range map[string]string{"n2": "409", "n1": "409", "nobody": "404"} {
		if err := c.Agent().ForceLeave(name); err == nil || !strings.Contains(err.Error(), code) {
			t.Fatalf("ForceLeave(%s) = %v, want %s", name, err, code)
		}
	}
	if err := c.Agent().ForceLeave("n3"); err != nil {
		t.Fatalf("ForceLeave(n3): %v", err)
	}
	for _, n := range nodes[:2] {
		if s := memberStatus(n, "n3"); s != membership.Left {
			t.Fatalf("%s sees n3 %s right after force-leave, want left", n.Name(), s)
		}
	}
	if err := c.Agent().ForceLeave("n3"); err != nil { // already left: fine
		t.Fatalf("ForceLeave(n3) again: %v", err)
	}
	members, _ = c.Agent().Members(false)
	if members[2].Status != serfLeft {
		t.Fatalf("n3 after force-leave: status %d, want left (3)", members[2].Status)
	}
	if checks, _, err := c.Health().State("any", nil); err != nil || len(checks) != 2 {
		t.Fatalf("checks after force-leave = %d, %v; want 2 (left nodes leave the catalog)", len(checks), err)
	}
	// The node keeps serving.
	if code, _ := agentDo(t, nodes[0], "GET", "/v1/health", ""); code != http.StatusOK {
		t.Fatalf("health after all that = %d", code)
	}
}

func TestAgentJoin(t *testing.T) {
	t.Parallel()
	n1 := startNode(t, func(c *node.Config) { c.Name = "n1"; c.ClusterListen = "127.0.0.1:-1"; fastBeats(c) })
	n2 := startNode(t, func(c *node.Config) { c.Name = "n2"; c.ClusterListen = "127.0.0.1:-1"; fastBeats(c) })
	if len(n1.Members().Members) != 1 || len(n2.Members().Members) != 1 {
		t.Fatal("the nodes know each other before the join")
	}
	c2 := agentConsul(t, n2, "")
	if err := c2.Agent().Join(n1.Bus().ClusterAddr(), false); err != nil {
		t.Fatalf("Agent().Join: %v", err)
	}
	waitMembers(t, []*node.Node{n1, n2}, 2, 5*time.Second)
	if err := c2.Agent().Join(n1.Bus().ClusterAddr(), false); err != nil { // again: a no-op
		t.Fatalf("Agent().Join again: %v", err)
	}

	// Errors: a bad address, one nobody listens on, a node without a cluster port.
	if err := c2.Agent().Join("no-port", false); err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("join no-port = %v, want 400", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	if err := c2.Agent().Join(closed, false); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("join a closed port = %v, want 500", err)
	}
	solo := startNode(t, func(c *node.Config) { c.Name = "solo" })
	err := agentConsul(t, solo, "").Agent().Join(n1.Bus().ClusterAddr(), false)
	if err == nil || !strings.Contains(err.Error(), "501") || !strings.Contains(err.Error(), "--cluster-listen") {
		t.Fatalf("join from a node without a cluster port = %v, want 501 naming --cluster-listen", err)
	}
}

func TestAgentLeave(t *testing.T) {
	t.Parallel()
	left := make(chan struct{})
	nodes := startCluster(t, 3, func(i int, c *node.Config) {
		if i == 2 {
			c.OnLeave = func() { close(left) } // as `roost serve` wires it
		}
	})
	// n3 leaves with a callback: peers see it left, then the callback runs.
	if err := agentConsul(t, nodes[2], "").Agent().Leave(); err != nil {
		t.Fatalf("Agent().Leave on n3: %v", err)
	}
	eventually(t, time.Second, func() error {
		for _, n := range nodes[:2] {
			if s := memberStatus(n, "n3"); s != membership.Left {
				return fmt.Errorf("%s sees n3 %s", n.Name(), s)
			}
		}
		return nil
	})
	select {
	case <-left:
	case <-time.After(2 * time.Second):
		t.Fatal("OnLeave not called within 2s")
	}

	// n2 leaves without a callback: it stops itself.
	if err := agentConsul(t, nodes[1], "").Agent().Leave(); err != nil {
		t.Fatalf("Agent().Leave on n2: %v", err)
	}
	eventually(t, time.Second, func() error {
		if s := memberStatus(nodes[0], "n2"); s != membership.Left {
			return fmt.Errorf("n1 sees n2 %s", s)
		}
		return nil
	})
	eventually(t, 5*time.Second, func() error {
		conn, err := net.DialTimeout("tcp", nodes[1].HTTPAddr(), 100*time.Millisecond)
		if err == nil {
			conn.Close()
			return fmt.Errorf("n2's HTTP still listens")
		}
		return nil
	})
	members, err := agentConsul(t, nodes[0], "").Agent().Members(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members[1:] {
		if m.Status != serfLeft {
			t.Fatalf("%s status %d, want left (3)", m.Name, m.Status)
		}
	}
	if code, _ := agentDo(t, nodes[0], "GET", "/v1/agent/leave", ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /v1/agent/leave = %d, want 405", code)
	}
}

func TestAgentRoostMembersFilterAndTags(t *testing.T) {
	t.Parallel()
	zones := []string{"a", "b", "a"}
	nodes := startCluster(t, 3, func(i int, c *node.Config) {
		c.Token = agentToken
		c.Tags = map[string]string{"zone": zones[i]}
	})
	auth := []string{"X-Consul-Token", agentToken}
	names := func(n *node.Node, query string) []string {
		t.Helper()
		code, body := agentDo(t, n, "GET", "/v1/roost/members"+query, "", auth...)
		if code != http.StatusOK {
			t.Fatalf("members%s = %d %s", query, code, body)
		}
		var r node.MembersReply
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range r.Members {
			out = append(out, m.Name)
			if m.Partitions.Primary == 0 {
				t.Fatalf("%s leads no partition in n1's reply", m.Name)
			}
		}
		return out
	}
	for query, want := range map[string][]string{
		"":                                {"n1", "n2", "n3"},
		"?tag=zone:a":                     {"n1", "n3"},
		"?tag=zone:b&status=alive":        {"n2"},
		"?tag=zone":                       {"n1", "n2", "n3"},
		"?tag=zone:a&tag=rack:1":          nil,
		"?status=dead,left":               nil,
		"?status=alive&status=suspect":    {"n1", "n2", "n3"},
		"?tag=zone:a&status=alive,dead":   {"n1", "n3"},
		"?tag=nothing&status=alive,alive": nil,
	} {
		if got := names(nodes[0], query); !slices.Equal(got, want) {
			t.Fatalf("members%s = %v, want %v", query, got, want)
		}
	}
	for _, q := range []string{"?status=bogus", "?tag=:a"} {
		if code, _ := agentDo(t, nodes[0], "GET", "/v1/roost/members"+q, "", auth...); code != http.StatusBadRequest {
			t.Fatalf("members%s = %d, want 400", q, code)
		}
	}
	if code, _ := agentDo(t, nodes[0], "GET", "/v1/roost/members", ""); code != http.StatusForbidden {
		t.Fatalf("members without the token = %d, want 403", code)
	}

	// Re-tag n2 through n1: n1 shows it in its answer's wake, every node soon.
	code, body := agentDo(t, nodes[0], "PUT", "/v1/roost/members/n2/tags", `{"zone":"c","rack":"7"}`, auth...)
	if code != http.StatusOK {
		t.Fatalf("PUT n2's tags = %d %s", code, body)
	}
	if got := names(nodes[0], "?tag=zone:c&tag=rack:7"); !slices.Equal(got, []string{"n2"}) {
		t.Fatalf("n1 right after the re-tag: zone c = %v, want [n2]", got)
	}
	eventually(t, 2*time.Second, func() error {
		for _, n := range nodes {
			if got := names(n, "?tag=zone:c"); !slices.Equal(got, []string{"n2"}) {
				return fmt.Errorf("%s: zone c = %v", n.Name(), got)
			}
		}
		return nil
	})
	// consul's members show the new tags too.
	members, err := agentConsul(t, nodes[2], agentToken).Agent().Members(false)
	if err != nil || members[1].Tags["zone"] != "c" || members[1].Tags["rack"] != "7" {
		t.Fatalf("consul members after the re-tag = %+v, %v", members, err)
	}

	for _, tc := range []struct {
		path, body string
		code       int
	}{
		{"/v1/roost/members/nobody/tags", `{"a":"b"}`, http.StatusNotFound},
		{"/v1/roost/members/n2/tags", `["a"]`, http.StatusBadRequest},
		{"/v1/roost/members/n2/tags", `{"a":1}`, http.StatusBadRequest},
		{"/v1/roost/members/n2/tags", `{"":"x"}`, http.StatusBadRequest},
	} {
		if code, body := agentDo(t, nodes[0], "PUT", tc.path, tc.body, auth...); code != tc.code {
			t.Fatalf("PUT %s %s = %d %s, want %d", tc.path, tc.body, code, body, tc.code)
		}
	}
	if code, _ := agentDo(t, nodes[0], "PUT", "/v1/roost/members/n2/tags", `{}`); code != http.StatusForbidden {
		t.Fatalf("PUT tags without the token = %d, want 403", code)
	}
}
