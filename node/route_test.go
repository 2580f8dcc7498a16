package node

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/internal/testkit"
	"github.com/roostkv/roost/partition"
)

func TestWantRouted(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    routeState
		want bool
	}{
		{"the ready primary takes it", routeState{serves: true, leads: true, others: 1}, true},
		{"and keeps it", routeState{subscribed: true, serves: true, leads: true, others: 2}, true},
		{"a syncing primary waits while the old one serves", routeState{leads: true, others: 1}, false},
		{"a syncing primary takes what nobody serves", routeState{leads: true}, true},
		{"a syncing primary on an external NATS waits", routeState{leads: true, others: -1}, false},
		{"a non-primary does not take it", routeState{}, false},
		{"the first replica stands in when nobody holds it", routeState{standIn: true}, true},
		{"but not while someone does", routeState{standIn: true, others: 1}, false},
		{"and lets go when someone else takes it", routeState{subscribed: true, standIn: true, others: 1}, false},
		{"nor on an external NATS", routeState{standIn: true, others: -1}, false},
		{"nor when nobody serves it", routeState{others: 0}, false},
		{"a former primary keeps it while nobody else holds it", routeState{subscribed: true, undesired: time.Hour}, true},
		{"and lets go once another node holds it", routeState{subscribed: true, others: 1}, false},
		{"a leaving node too", routeState{subscribed: true, others: 1, undesired: time.Millisecond}, false},
		{"external NATS: keeps it for the grace", routeState{subscribed: true, others: -1, undesired: routeGrace - 1}, true},
		{"external NATS: then lets go", routeState{subscribed: true, others: -1, undesired: routeGrace}, false},
	} {
		if got := wantRouted(tc.s); got != tc.want {
			t.Errorf("%s: wantRouted(%+v) = %v, want %v", tc.name, tc.s, got, tc.want)
		}
	}
}

// TestTextRoutingByConfig: a node that can have peers holds the routed
// subjects whatever its --text-route; the flag decides only whether its
// embedded server maps; an external NATS is mapped by its operator.
func TestTextRoutingByConfig(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         Config
		holds, maps bool
	}{
		{"lone node: neither", Config{}, false, false},
		{"lone node, local: neither", Config{TextRoute: TextRouteLocal}, false, false},
		{"cluster, default: both", Config{ClusterListen: "127.0.0.1:6222"}, true, true},
		{"cluster, partition: both", Config{ClusterListen: "127.0.0.1:6222", TextRoute: TextRoutePartition}, true, true},
		{"joining, default: both", Config{Join: []string{"127.0.0.1:6222"}}, true, true},
		{"cluster, local: holds, maps nothing", Config{ClusterListen: "127.0.0.1:6222", TextRoute: TextRouteLocal}, true, false},
		{"external NATS: holds, the operator maps", Config{NATSURL: "nats://127.0.0.1:4222"}, true, false},
		{"external NATS, local: holds", Config{NATSURL: "nats://127.0.0.1:4222", TextRoute: TextRouteLocal}, true, false},
	} {
		tc.cfg.Partitions = DefaultPartitions
		n := &Node{cfg: tc.cfg, subj: wire.NewSubjects("")}
		if got := n.textRouting(); got != tc.holds {
			t.Errorf("%s: holds the routed subjects = %v, want %v", tc.name, got, tc.holds)
		}
		if got := len(n.textMappings()) > 0; got != tc.maps {
			t.Errorf("%s: its server maps = %v, want %v", tc.name, got, tc.maps)
		}
	}
}

// A node that maps the text API joins a node of a build before routed
// subjects (it holds none, and its beats say nothing of them): while that
// node is a member, the mapping node must not map requests to the
// partitions it leads (nobody would answer them), and it maps again once
// that node has gone.
func TestMappingWaitsForOlderBuilds(t *testing.T) {
	start := func(name string, edit func(c *Config), unrouted bool) *Node {
		return startClusterNode(t, name, func(c *Config) {
			c.Replicas = 1 // no stand-in: a partition the older node leads has no other holder
			edit(c)
		}, func(n *Node) { n.unrouted = unrouted })
	}
	// The older node is there first, as in a rolling upgrade: a never
	// leads (so never holds) the partitions the older node leads.
	old := start("old", func(c *Config) { c.TextRoute = TextRouteLocal }, true) // an older build's default
	a := start("a", func(c *Config) { c.Join = []string{old.bus.ClusterAddr()} }, false)
	nc := testkit.Connect(t, a.ClientURL())
	testkit.Eventually(t, 10*time.Second, func() error { return cmp.Or(settled(a, 2), settled(old, 2)) })
	if a.bus.Mapped() {
		t.Fatal("a still maps text requests with an older build in the cluster")
	}
	// Every key's set and get through a's server is answered, those the
	// older node leads included.
	ledByOld := 0
	roundTrip := func(i int) error {
		key := "k" + strconv.Itoa(i)
		if old.routing.Load().primary(partition.Of(key, old.cfg.Partitions)) {
			ledByOld++
		}
		for _, req := range []struct{ op, body string }{{"set", "v" + key}, {"get", ""}} {
			msg, err := nc.Request("roost."+req.op+"."+key, []byte(req.body), 2*time.Second)
			if err != nil {
				return fmt.Errorf("%s %s: %w", req.op, key, err)
			}
			if code := msg.Header.Get("Nats-Service-Error-Code"); code != "" {
				return fmt.Errorf("%s %s: error %s %s", req.op, key, code, msg.Header.Get("Nats-Service-Error"))
			}
			if req.op == "get" && string(msg.Data) != "v"+key {
				return fmt.Errorf("get %s = %q", key, msg.Data)
			}
		}
		return nil
	}
	for i := range 100 {
		if err := roundTrip(i); err != nil {
			t.Fatal(err)
		}
	}
	if ledByOld == 0 {
		t.Fatal("no key of the 100 is led by the older node: the test shows nothing")
	}
	// Once it has gone, a maps again, and still answers.
	old.Stop()
	testkit.Eventually(t, 10*time.Second, func() error {
		if !a.bus.Mapped() {
			return errors.New("a does not map text requests again")
		}
		return settled(a, 1)
	})
	for i := range 100 {
		if err := roundTrip(i); err != nil {
			t.Fatal(err)
		}
	}
}

// Observers of the routed subjects (`nats sub '>'`, `nats sub 'roost.>'`)
// answer nothing, and must not move who holds them: with them about, a
// request through a mapping server still reaches its key's primary with no
// hop. The server's count of matching subscriptions stops at a full
// wildcard, so a node that counted with it took every observer for the
// only holder: stand-ins held every partition and forwarded about half
// the requests.
func TestObserversDoNotMoveRoutedSubjects(t *testing.T) {
	a := startClusterNode(t, "a", nil, nil)
	b := startClusterNode(t, "b", func(c *Config) { c.Join = []string{a.bus.ClusterAddr()} }, nil)
	testkit.Eventually(t, 10*time.Second, func() error { return cmp.Or(settled(a, 2), settled(b, 2)) })
	for _, o := range []struct {
		n       *Node
		subject string
	}{{a, ">"}, {b, ">"}, {a, "roost.>"}, {b, "roost.t.>"}} {
		nc := testkit.Connect(t, o.n.ClientURL())
		if _, err := nc.Subscribe(o.subject, func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	forwarded := func() uint64 { return a.metrics.forwarded.Load() + b.metrics.forwarded.Load() }
	nc := testkit.Connect(t, a.ClientURL())
	// Several rounds of the router pass (10 ms each) while requests flow:
	// a stand-in that took a subject would be given some of them.
	before := forwarded()
	deadline := time.Now().Add(500 * time.Millisecond)
	requests := 0
	for i := 0; time.Now().Before(deadline) || i < 200; i++ {
		key := "k" + strconv.Itoa(i%200)
		msg, err := nc.Request("roost.set."+key, []byte("v"), 2*time.Second)
		if err != nil || msg.Header.Get("Nats-Service-Error-Code") != "" {
			t.Fatalf("set %s: %v %v", key, err, msg.Header)
		}
		requests++
	}
	if got := forwarded() - before; got != 0 {
		t.Fatalf("%d of %d requests through a mapping server were forwarded with observers about; want 0", got, requests)
	}
}
