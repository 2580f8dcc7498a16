package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestConfigCommand drives `roost config` against a served node: where
// each setting came from (flag, env), a pushed max_memory and log_level by
// tag, the soft memory limit following, bad input refused, and unset.
func TestConfigCommand(t *testing.T) {
	n, memLimit, _ := serveInProcess(t, map[string]string{"ROOST_LOG_LEVEL": "warn"},
		"--name", "cfg", "--listen", "127.0.0.1:-1", "--http", "off", "--max-memory", "128MiB", "--tags", "zone=a")
	srv := n.ClientURL()

	out := roost(t, "", "config", "get", "--server", srv).ok(t)
	// Rows compared with their columns' padding squeezed to one space.
	rows := regexp.MustCompile(` +`).ReplaceAllString(out, " ")
	for _, want := range []string{"(none)", "cfg max_memory 128MiB flag", "cfg log_level warn env ROOST_LOG_LEVEL", `cfg tags {"zone":"a"} flag`, "cfg load_ttl 10m0s default", "cfg negative_ttl 30s default"} {
		if !strings.Contains(rows, want) {
			t.Errorf("config get lacks %q:\n%s", want, out)
		}
	}

	out = roost(t, "", "config", "set", "--tag", "zone=a", "max_memory=64MiB", "log_level=debug", "--server", srv).ok(t)
	if !strings.Contains(out, "rule tag zone:a") || strings.Contains(out, "not applied") {
		t.Errorf("config set:\n%s", out)
	}
	if st := n.Status(); st.Store.MaxBytes != 64<<20 {
		t.Errorf("max bytes %d after the push, want 64 MiB", st.Store.MaxBytes)
	}
	wantHeapLimit(t, n, memLimit, 64<<20)

	roost(t, "", "config", "set", "max_memory=lots", "--server", srv).fails(t, exitError, "max_memory")
	roost(t, "", "config", "set", "--tag", "zone=a", "--node", "cfg", "log_level=info", "--server", srv).fails(t, exitUsage, "not both")
	roost(t, "", "config", "set", "nonsense", "--server", srv).fails(t, exitUsage, "SETTING=VALUE")
	roost(t, "", "config", "unset", "--node", "other", "--server", srv).fails(t, exitError, "no rule")

	// A value the node cannot apply (below its least limit, 16 shards of
	// 4 MiB) is stored but refused: the command fails and says which node
	// and rule; get shows the value in force and the refused rule.
	roost(t, "", "config", "set", "--node", "cfg", "max_memory=1MiB", "--server", srv).fails(t, exitError, "cfg: max_memory: rule node cfg not applied")
	out = roost(t, "", "config", "get", "--node", "cfg", "--server", srv).ok(t)
	if rows := regexp.MustCompile(` +`).ReplaceAllString(out, " "); !strings.Contains(rows, "cfg max_memory 64MiB rule tag zone:a (rule node cfg not applied") {
		t.Errorf("config get after a refused value:\n%s", out)
	}
	roost(t, "", "config", "unset", "--node", "cfg", "--server", srv).ok(t)

	roost(t, "", "config", "unset", "--tag", "zone=a", "max_memory", "--server", srv).ok(t)
	out = roost(t, "", "config", "get", "--node", "cfg", "--server", srv).ok(t)
	if !strings.Contains(out, "128MiB") || !strings.Contains(out, "debug") {
		t.Errorf("after unset of max_memory:\n%s", out)
	}
	if st := n.Status(); st.Store.MaxBytes != 128<<20 {
		t.Errorf("max bytes %d after unset, want 128 MiB", st.Store.MaxBytes)
	}
}
