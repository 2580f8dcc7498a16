package main

import (
	"encoding/json"
	"os"
	"testing"
)

func TestIncrTouchCommands(t *testing.T) {
	n := startNode(t, nil)
	srv := n.ClientURL()
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"incr", "hits"}, "1\n"},
		{[]string{"incr", "hits", "41"}, "42\n"},
		{[]string{"incr", "--server", srv, "hits", "--", "-2"}, "40\n"},
		{[]string{"incr", "hits", "--by", "-10", "--ack", "all"}, "30\n"},
	} {
		args := step.args
		if args[1] != "--server" {
			args = append(args, "--server", srv)
		}
		if got := roost(t, "", args...).ok(t); got != step.want {
			t.Fatalf("%v printed %q, want %q", step.args, got, step.want)
		}
	}
	var out counterJSON
	if err := json.Unmarshal([]byte(roost(t, "", "incr", "hits", "--json", "--server", srv).ok(t)), &out); err != nil || out.Value != 31 || out.Version == 0 {
		t.Fatalf("incr --json = %+v, %v", out, err)
	}
	roost(t, "", "incr", "hits", "1.5", "--server", srv).fails(t, exitUsage, "bad delta")
	roost(t, "", "set", "name", "roost", "--server", srv).ok(t)
	roost(t, "", "incr", "name", "--server", srv).fails(t, exitError, "does not hold a counter")

	roost(t, "", "touch", "none", "--ttl", "1m", "--server", srv).fails(t, exitError, "not found")
	roost(t, "", "touch", "name", "--server", srv).fails(t, exitUsage, "--ttl")
	version(t, roost(t, "", "touch", "name", "--ttl", "1h", "--server", srv).ok(t))
	if got := roost(t, "", "get", "name", "--touch", "2h", "--server", srv).ok(t); got != "roost" {
		t.Fatalf("get --touch printed %q", got)
	}
	var it itemJSON
	if err := json.Unmarshal([]byte(roost(t, "", "get", "name", "--json", "--server", srv).ok(t)), &it); err != nil || it.Expires == nil {
		t.Fatalf("after get --touch: %+v, %v; want an expiry", it, err)
	}
}

// TestFeedExpiryFlag: --feed-expiry is a serve flag, read from the
// environment and the config file too.
func TestFeedExpiryFlag(t *testing.T) {
	roostEnv(t, map[string]string{"ROOST_FEED_EXPIRY": "maybe"}, "", "serve", "--http", "off").fails(t, exitUsage, "--feed-expiry")
	cfg := t.TempDir() + "/roost.yaml"
	if err := os.WriteFile(cfg, []byte("feed-expiry: maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	roost(t, "", "serve", "--http", "off", "--config", cfg).fails(t, exitUsage, "--feed-expiry")
}
