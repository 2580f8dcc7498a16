package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestServePlacementTag: --placement-tag comes from the flag, from
// ROOST_PLACEMENT_TAG or from the config file, like every serve flag, and
// the node places by it.
func TestServePlacementTag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "roost.yaml")
	if err := os.WriteFile(file, []byte("placement-tag: rack\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--listen", "127.0.0.1:-1", "--http", "off", "--tags", "zone=a,rack=1"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"flag", nil, []string{"--placement-tag", "zone"}, "zone"},
		{"env", map[string]string{"ROOST_PLACEMENT_TAG": "zone"}, nil, "zone"},
		{"file", nil, []string{"--config", file}, "rack"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, _, stop := serveInProcess(t, tc.env, append(append([]string{"--name", "pl-" + tc.name}, base...), tc.args...)...)
			pl := n.Status().Cluster.Placement
			if pl == nil || pl.Tag != tc.want || len(pl.Zones) != 1 {
				t.Errorf("placement %+v, want by tag %q", pl, tc.want)
			}
			stop()
		})
	}
	roost(t, "", "serve", "--placement-tag", "a b").fails(t, exitUsage, "--placement-tag")
}
