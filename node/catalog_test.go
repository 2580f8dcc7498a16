package node

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/roostkv/roost/actors/membership"
)

func TestAggregate(t *testing.T) {
	for _, tc := range []struct {
		statuses []string
		want     string
	}{
		{nil, checkPassing},
		{[]string{checkPassing, checkPassing}, checkPassing},
		{[]string{checkPassing, checkWarning}, checkWarning},
		{[]string{checkWarning, checkCritical, checkPassing}, checkCritical},
		{[]string{"maintenance"}, checkCritical},
	} {
		var cs []healthCheck
		for _, s := range tc.statuses {
			cs = append(cs, healthCheck{Status: s})
		}
		if got := aggregate(cs); got != tc.want {
			t.Errorf("aggregate(%v) = %s, want %s", tc.statuses, got, tc.want)
		}
	}
}

// TestBalanceByWeight: the first of the balanced order is each instance
// in proportion to its weight; weight 0 is never first.
func TestBalanceByWeight(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	mk := func(node string, w int) serviceEntry {
		return serviceEntry{Node: catalogNode{Node: node}, Service: agentService{ID: "web", Weights: agentWeights{Passing: w, Warning: 1}}}
	}
	first := map[string]int{}
	const rounds = 20000
	for range rounds {
		es := []serviceEntry{mk("a", 3), mk("b", 1), mk("c", 0)}
		balance(es, r)
		first[es[0].Node.Node]++
		if es[2].Node.Node != "c" {
			t.Fatalf("weight 0 not last: %v", es)
		}
	}
	if share := float64(first["a"]) / rounds; share < 0.72 || share > 0.78 {
		t.Errorf("weight 3 of 4 came first %.3f of the time, want about 0.75 (%v)", share, first)
	}
}

func TestHealthEntriesFilter(t *testing.T) {
	alive := membership.Member{Name: "n1", ID: "id1", Status: membership.Alive}
	entry := func(id string, tags []string, status string) catalogEntry {
		return catalogEntry{member: alive, rec: svcRecord{Node: "n1", NodeID: "id1",
			Service: agentService{ID: id, Service: "web", Tags: tags},
			Checks:  []healthCheck{{CheckID: "service:" + id, Status: status}}}}
	}
	all := []catalogEntry{
		entry("w1", []string{"v1", "eu"}, checkPassing),
		entry("w2", []string{"v1"}, checkCritical),
		entry("w3", []string{"v2"}, checkWarning),
		{member: alive, rec: svcRecord{Node: "n1", NodeID: "id1", Service: agentService{ID: "db", Service: "db"}}},
	}
	for _, tc := range []struct {
		f    healthFilter
		want []string
	}{
		{healthFilter{name: "web"}, []string{"w1", "w2", "w3"}},
		{healthFilter{name: "web", passing: true}, []string{"w1"}},
		{healthFilter{name: "web", tags: []string{"v1"}}, []string{"w1", "w2"}},
		{healthFilter{name: "web", tags: []string{"v1", "eu"}}, []string{"w1"}},
		{healthFilter{name: "nope"}, nil},
	} {
		got := healthEntries(all, tc.f)
		var ids []string
		for _, e := range got {
			ids = append(ids, e.Service.ID)
			if e.Checks[0].CheckID != "serfHealth" {
				t.Errorf("%+v: first check %q, want serfHealth", tc.f, e.Checks[0].CheckID)
			}
		}
		if len(ids) != len(tc.want) || (len(ids) > 0 && !equalStrings(ids, tc.want)) {
			t.Errorf("%+v: got %v, want %v", tc.f, ids, tc.want)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStaleRecord(t *testing.T) {
	view := membership.View{Members: []membership.Member{
		{Name: "a", ID: "a1", Status: membership.Alive},
		{Name: "b", ID: "b1", Status: membership.Suspect},
		{Name: "c", ID: "c1", Status: membership.Dead},
		{Name: "d", ID: "d1", Status: membership.Left},
		{Name: "e", ID: "e2", Status: membership.Alive},
	}}
	for _, tc := range []struct {
		node, id string
		settled  bool
		stale    bool
	}{
		{"a", "a1", true, false},
		{"b", "b1", true, false}, // suspect: not yet
		{"c", "c1", false, true}, // dead
		{"d", "d1", false, true}, // left
		{"e", "e1", false, true}, // restarted: an earlier run's record
		{"z", "z1", false, false},
		{"z", "z1", true, true}, // unknown once this node has heard everyone
	} {
		rec := &svcRecord{Node: tc.node, NodeID: tc.id}
		if got := staleRecord(view, rec, tc.settled); got != tc.stale {
			t.Errorf("%s/%s settled=%v: stale=%v, want %v", tc.node, tc.id, tc.settled, got, tc.stale)
		}
		if _, live := liveRecord(view, rec); live == tc.stale && tc.node != "z" {
			t.Errorf("%s/%s: liveRecord=%v disagrees with stale=%v", tc.node, tc.id, live, tc.stale)
		}
	}
}

func TestNewLocalServiceRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		reg  svcRegistration
	}{
		{"no name", svcRegistration{ID: "x"}},
		{"slash in id", svcRegistration{Name: "web", ID: "a/b"}},
		{"long id", svcRegistration{Name: "web", ID: strings.Repeat("x", 513)}},
		{"bad port", svcRegistration{Name: "web", Port: 70000}},
		{"zero weight", svcRegistration{Name: "web", Weights: &agentWeights{Passing: 0}}},
		{"no kind of check", svcRegistration{Name: "web", Check: &checkRegistration{}}},
		{"both kinds", svcRegistration{Name: "web", Check: &checkRegistration{TTL: "1s", HTTP: "http://x/", Interval: "1s"}}},
		{"script", svcRegistration{Name: "web", Check: &checkRegistration{ScriptArgs: []string{"true"}, Interval: "1s"}}},
		{"bad ttl", svcRegistration{Name: "web", Check: &checkRegistration{TTL: "soon"}}},
		{"http without interval", svcRegistration{Name: "web", Check: &checkRegistration{HTTP: "http://x/"}}},
		{"http not a url", svcRegistration{Name: "web", Check: &checkRegistration{HTTP: "x", Interval: "1s"}}},
		{"bad status", svcRegistration{Name: "web", Check: &checkRegistration{TTL: "1s", Status: "fine"}}},
		{"connect proxy", svcRegistration{Name: "web", Kind: "connect-proxy"}},
	} {
		if _, err := newLocalService(&tc.reg, time.Now()); codeOf(err) != 400 {
			t.Errorf("%s: got %v, want a 400", tc.name, err)
		}
	}
	ls, err := newLocalService(&svcRegistration{Name: "web", Checks: []*checkRegistration{{TTL: "1s"}, {TTL: "2s", Status: checkPassing}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if ls.svc.ID != "web" || ls.checks[0].state.CheckID != "service:web:1" || ls.checks[1].state.CheckID != "service:web:2" ||
		ls.checks[0].state.Status != checkCritical || ls.checks[1].state.Status != checkPassing || ls.svc.Weights != (agentWeights{1, 1}) {
		t.Errorf("defaults: %+v %+v %+v", ls.svc, ls.checks[0].state, ls.checks[1].state)
	}
}

// TestAgentExpire: a TTL check lapses to critical at its deadline, an
// update restarts it, and DeregisterCriticalServiceAfter removes the
// service once critical that long.
func TestAgentExpire(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := newCatalogAgent()
	ls, err := newLocalService(&svcRegistration{Name: "web", Check: &checkRegistration{TTL: "10s", Status: checkPassing, DeregisterCriticalServiceAfter: "1m"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.register(ls); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at               time.Duration
		pass             bool // a TTL pass at this time, before the clock step
		changed, removed int
		status           string
	}{
		{9 * time.Second, false, 0, 0, checkPassing},
		{10 * time.Second, false, 1, 0, checkCritical},
		{11 * time.Second, false, 0, 0, checkCritical},
		{12 * time.Second, true, 0, 0, checkPassing},
		{21 * time.Second, false, 0, 0, checkPassing},
		{22 * time.Second, false, 1, 0, checkCritical},
		{81 * time.Second, false, 0, 0, checkCritical},
		{82 * time.Second, false, 0, 1, ""},
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		if s.pass {
			if id, err := a.updateCheck("service:web", checkPassing, "", now); err != nil || id != "web" {
				t.Fatalf("at %s: pass: %q %v", s.at, id, err)
			}
		}
		changed, removed := a.expire(now)
		if len(changed) != s.changed || len(removed) != s.removed {
			t.Errorf("at %s: changed %v removed %v, want %d and %d", s.at, changed, removed, s.changed, s.removed)
		}
		rec := a.record("web", "n1", "id1")
		switch {
		case s.status == "" && rec != nil:
			t.Errorf("at %s: still registered", s.at)
		case s.status != "" && (rec == nil || rec.Checks[0].Status != s.status):
			t.Errorf("at %s: record %+v, want status %s", s.at, rec, s.status)
		}
	}
	if _, err := a.updateCheck("service:web", checkPassing, "", t0); codeOf(err) != 404 {
		t.Errorf("update of a removed check: %v, want a 404", err)
	}
}
