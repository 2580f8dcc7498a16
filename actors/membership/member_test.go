package membership

import (
	"slices"
	"testing"
)

func TestViewLiveAndFind(t *testing.T) {
	v := View{Version: 7, Members: []Member{
		{Name: "a", Role: RoleServer, Status: Alive, Self: true},
		{Name: "b", Role: RoleProxy, Status: Alive},
		{Name: "c", Role: RoleServer, Status: Suspect},
		{Name: "d", Role: RoleServer, Status: Dead},
		{Name: "e", Role: RoleServer, Status: Left},
		{Name: "f", Role: RoleServer, Status: Alive},
	}}
	names := func(ms []Member) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	for _, tc := range []struct {
		role string
		want []string
	}{
		{"", []string{"a", "b", "c", "f"}},
		{RoleServer, []string{"a", "c", "f"}},
		{RoleProxy, []string{"b"}},
		{"other", nil},
	} {
		if got := names(v.Live(tc.role)); !slices.Equal(got, tc.want) {
			t.Errorf("Live(%q) = %v, want %v", tc.role, got, tc.want)
		}
	}
	for _, m := range v.Members {
		got, ok := v.Find(m.Name)
		if !ok || got.Name != m.Name || got.Status != m.Status {
			t.Errorf("Find(%q) = %+v, %v", m.Name, got, ok)
		}
	}
	for _, name := range []string{"", "0", "bb", "z"} {
		if _, ok := v.Find(name); ok {
			t.Errorf("Find(%q) found a member", name)
		}
	}
	if me, ok := v.Self(); !ok || me.Name != "a" {
		t.Errorf("Self() = %+v, %v", me, ok)
	}
}
