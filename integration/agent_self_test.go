package integration

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/node"
)

// What consul's own tooling reads first: /v1/agent/self, /v1/status/leader
// and /v1/status/peers, and the member tags `consul members` prints.

// consulMembersRow is the row `consul members` prints for m (its
// standardOutput, without partition and segment): node, address, status,
// type, build, protocol, dc.
func consulMembersRow(m *api.AgentMember) string {
	typ := "unknown"
	switch m.Tags[api.MemberTagKeyRole] {
	case api.MemberTagValueRoleServer:
		typ = "server"
	case api.MemberTagValueRoleClient:
		typ = "client"
	}
	build, _, _ := strings.Cut(m.Tags["build"], ":")
	if typ == "unknown" {
		return fmt.Sprintf("%s %s:%d %d unknown", m.Name, m.Addr, m.Port, m.Status)
	}
	return fmt.Sprintf("%s %s:%d %d %s %s %s %s", m.Name, m.Addr, m.Port, m.Status, typ, build, m.Tags["vsn"], m.Tags[api.MemberTagKeyDatacenter])
}

// natsHostPort is n's NATS client address as host:port.
func natsHostPort(t *testing.T, n *node.Node) string {
	t.Helper()
	u, err := url.Parse(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(u.Hostname(), u.Port())
}

func TestAgentSelfStatusAndConsulMembers(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, func(i int, c *node.Config) {
		c.Token = agentToken
		c.Datacenter = "eu-west"
		if i == 2 {
			c.Role = node.RoleProxy
		}
	})
	c := agentConsul(t, nodes[1], agentToken)

	// Agent().Self: consul's shape, with the fields its tools read.
	self, err := c.Agent().Self()
	if err != nil {
		t.Fatalf("Agent().Self: %v", err)
	}
	cfg := self["Config"]
	if cfg["NodeName"] != "n2" || cfg["Datacenter"] != "eu-west" || cfg["Version"] != node.Version || cfg["Server"] != true || cfg["NodeID"] != nodes[1].ID() {
		t.Fatalf("Self Config = %v", cfg)
	}
	member := self["Member"]
	tags, _ := member["Tags"].(map[string]any)
	if member["Name"] != "n2" || member["Addr"] != "127.0.0.1" || tags["dc"] != "eu-west" || tags["role"] != "consul" {
		t.Fatalf("Self Member = %v", member)
	}
	build, _ := self["Stats"]["build"].(map[string]any)
	if self["DebugConfig"]["SerfAdvertiseAddrLAN"] != "tcp://"+nodes[1].Bus().ClusterAddr() || build["version"] != node.Version {
		t.Fatalf("Self DebugConfig = %v, Stats = %v", self["DebugConfig"], self["Stats"])
	}
	if name, err := c.Agent().NodeName(); err != nil || name != "n2" {
		t.Fatalf("Agent().NodeName = %q, %v", name, err)
	}
	proxySelf, err := agentConsul(t, nodes[2], agentToken).Agent().Self()
	if err != nil || proxySelf["Config"]["Server"] != false || proxySelf["Member"]["Tags"].(map[string]any)["role"] != "node" {
		t.Fatalf("the proxy's Self = %v, %v", proxySelf, err)
	}

	// Agent().Members as `consul members` prints them: type, build,
	// protocol and datacenter filled in.
	members, err := c.Agent().Members(false)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, m := range members {
		rows = append(rows, consulMembersRow(m))
	}
	want := []string{
		fmt.Sprintf("n1 %s 1 server %s 1 eu-west", natsHostPort(t, nodes[0]), node.Version),
		fmt.Sprintf("n2 %s 1 server %s 1 eu-west", natsHostPort(t, nodes[1]), node.Version),
		fmt.Sprintf("n3 %s 1 client %s 1 eu-west", natsHostPort(t, nodes[2]), node.Version),
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("consul members would print\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}

	// Status: the peers are the servers, the "leader" the first of them,
	// and every node says the same.
	wantPeers := []string{natsHostPort(t, nodes[0]), natsHostPort(t, nodes[1])}
	for _, n := range nodes {
		s := agentConsul(t, n, agentToken).Status()
		peers, err := s.Peers()
		if err != nil || !slices.Equal(peers, wantPeers) {
			t.Fatalf("%s: Status().Peers = %v, %v; want %v", n.Name(), peers, err, wantPeers)
		}
		leader, err := s.Leader()
		if err != nil || leader != wantPeers[0] {
			t.Fatalf("%s: Status().Leader = %q, %v; want %q", n.Name(), leader, err, wantPeers[0])
		}
	}
	if _, err := agentConsul(t, nodes[0], "").Status().Leader(); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Status().Leader without the token = %v, want 403", err)
	}
	if _, err := agentConsul(t, nodes[0], "").Agent().Self(); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("Agent().Self without the token = %v, want 403", err)
	}

	// n1 dies: it leaves the peers, the leader moves to n2, and members
	// shows it failed.
	nodes[0].Bus().Close()
	eventually(t, 5*time.Second, func() error {
		if s := memberStatus(nodes[1], "n1"); s != membership.Dead {
			return fmt.Errorf("n2 sees n1 %s", s)
		}
		leader, err := c.Status().Leader()
		if err != nil || leader != wantPeers[1] {
			return fmt.Errorf("leader %q, %v; want n2's %s", leader, err, wantPeers[1])
		}
		return nil
	})
	if peers, err := c.Status().Peers(); err != nil || !slices.Equal(peers, wantPeers[1:]) {
		t.Fatalf("peers after n1 died = %v, %v; want %v", peers, err, wantPeers[1:])
	}
	members, err = c.Agent().Members(false)
	if err != nil || members[0].Name != "n1" || members[0].Status != serfFailed || members[0].Tags["dc"] != "eu-west" {
		t.Fatalf("members after n1 died = %v, %v", members, err)
	}
}

func TestDatacenterDefaultsToDC1(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	self, err := agentConsul(t, n, "").Agent().Self()
	if err != nil {
		t.Fatal(err)
	}
	if self["Config"]["Datacenter"] != node.DefaultDatacenter || n.Status().Datacenter != "dc1" {
		t.Fatalf("datacenter = %v / %q, want dc1", self["Config"]["Datacenter"], n.Status().Datacenter)
	}
	if leader, err := agentConsul(t, n, "").Status().Leader(); err != nil || leader != natsHostPort(t, n) {
		t.Fatalf("a single node's leader = %q, %v; want itself", leader, err)
	}
}
