package node

import (
	"testing"
	"time"

	"github.com/roostkv/roost/bus/wire"
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
