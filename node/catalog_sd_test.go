package node

import (
	"testing"

	"github.com/roostkv/roost/actors/membership"
)

// TestServiceSDGroups: each instance with a port is one target group, at
// the service's address or else its node's, labelled as consul_sd labels
// (under __meta_roost_); an instance without a port is left out.
func TestServiceSDGroups(t *testing.T) {
	m := membership.Member{Name: "n1", ID: "id1", HTTP: "10.0.0.1:7721", Datacenter: "dc1", Status: membership.Alive,
		Tags: map[string]string{"zone": "a"}}
	entry := func(id, addr string, port int, status string) catalogEntry {
		return catalogEntry{member: m, rec: svcRecord{Node: "n1", NodeID: "id1",
			Service: agentService{ID: id, Service: "web", Address: addr, Port: port, Tags: []string{"x", "y"},
				Meta: map[string]string{"app.version": "2"}},
			Checks: []healthCheck{{CheckID: "service:" + id, Status: status}}}}
	}
	all := []catalogEntry{
		entry("a", "", 80, checkPassing),
		entry("b", "10.0.0.9", 8080, checkCritical),
		entry("c", "", 0, checkPassing),
	}
	for _, tc := range []struct {
		passing bool
		want    []string
	}{
		{false, []string{"10.0.0.1:80", "10.0.0.9:8080"}},
		{true, []string{"10.0.0.1:80"}},
	} {
		var got []sdGroup
		for _, se := range healthEntries(all, healthFilter{name: "web", passing: tc.passing}) {
			if g, ok := sdGroupOf(&se); ok {
				got = append(got, g)
			}
		}
		if len(got) != len(tc.want) {
			t.Fatalf("passing=%v: %d groups %v, want targets %v", tc.passing, len(got), got, tc.want)
		}
		for i, g := range got {
			if len(g.Targets) != 1 || g.Targets[0] != tc.want[i] {
				t.Errorf("passing=%v: group %d targets %v, want [%s]", tc.passing, i, g.Targets, tc.want[i])
			}
		}
	}
	se := healthEntries(all, healthFilter{name: "web"})[1]
	g, _ := sdGroupOf(&se)
	for k, want := range map[string]string{
		"__meta_roost_node":                         "n1",
		"__meta_roost_address":                      "10.0.0.1",
		"__meta_roost_dc":                           "dc1",
		"__meta_roost_service":                      "web",
		"__meta_roost_service_id":                   "b",
		"__meta_roost_service_address":              "10.0.0.9",
		"__meta_roost_service_port":                 "8080",
		"__meta_roost_health":                       checkCritical,
		"__meta_roost_tags":                         ",x,y,",
		"__meta_roost_service_metadata_app_version": "2",
		"__meta_roost_metadata_zone":                "a",
	} {
		if g.Labels[k] != want {
			t.Errorf("label %s = %q, want %q (all: %v)", k, g.Labels[k], want, g.Labels)
		}
	}
}
