package main

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

func TestGetLoadAndLoaders(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.LoadTimeout = 300 * time.Millisecond })
	srv := n.ClientURL()
	nc, err := nats.Connect(srv)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	// No loader: --load says nobody listens, and `roost loaders` finds none.
	roost(t, "", "get", "users.1", "--load", "--server", srv).fails(t, exitError, `no loader listens for it: nothing subscribes to roost.load.users.1`)
	if out := roost(t, "", "loaders", "--server", srv).ok(t); !strings.Contains(out, "no loader service found") {
		t.Fatalf("loaders with none: %q", out)
	}

	l, err := client.ServeLoader(context.Background(), nc, "users.>", func(_ context.Context, key string) ([]byte, client.LoadOptions, error) {
		switch key {
		case "users.gone":
			return nil, client.LoadOptions{}, client.ErrLoadNotFound
		case "users.broken":
			return nil, client.LoadOptions{}, errors.New("db down")
		}
		return []byte("loaded " + key), client.LoadOptions{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Stop()

	if out := roost(t, "", "get", "users.1", "--load", "--server", srv).ok(t); out != "loaded users.1" {
		t.Fatalf("get --load = %q", out)
	}
	roost(t, "", "get", "users.gone", "--load", "--server", srv).fails(t, exitError, `key "users.gone" not found: its loader answered 404`)
	roost(t, "", "get", "users.broken", "--load", "--server", srv).fails(t, exitError, "db down")
	// Without --load a miss reads as before.
	roost(t, "", "get", "users.gone", "--server", srv).fails(t, exitError, `key "users.gone" not found`)

	var loaders []loaderInfo
	if err := json.Unmarshal([]byte(roost(t, "", "loaders", "--json", "--server", srv).ok(t)), &loaders); err != nil {
		t.Fatal(err)
	}
	if len(loaders) != 1 || loaders[0].Name != client.DefaultLoaderService || len(loaders[0].Subjects) != 1 || loaders[0].Subjects[0] != "roost.load.users.>" {
		t.Fatalf("loaders: %+v", loaders)
	}
	// The node's own micro service ("roost") is not a loader.
	if out := roost(t, "", "loaders", "--server", srv).ok(t); !strings.Contains(out, "roost-loader") || !strings.Contains(out, "roost.load.users.>") {
		t.Fatalf("loaders table: %q", out)
	}
}

func TestHotKeysCommand(t *testing.T) {
	n := startNode(t, nil)
	srv := n.ClientURL()
	roost(t, "", "set", "hot", "x", "--server", srv).ok(t)
	c, err := client.Connect(srv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 2000 {
		if _, err := c.Get(context.Background(), "hot"); err != nil {
			t.Fatal(err)
		}
	}
	var lists []node.NodeHotKeys
	if err := json.Unmarshal([]byte(roost(t, "", "hotkeys", "-n", "1", "--json", "--server", srv).ok(t)), &lists); err != nil {
		t.Fatal(err)
	}
	if len(lists) != 1 || len(lists[0].Keys) != 1 || lists[0].Keys[0].Key != "hot" || lists[0].Keys[0].Reads < 500 {
		t.Fatalf("hotkeys: %+v", lists)
	}
	if out := roost(t, "", "hotkeys", "--server", srv).ok(t); !strings.Contains(out, "NODE") || !strings.Contains(out, "hot") {
		t.Fatalf("hotkeys table: %q", out)
	}
	roost(t, "", "hotkeys", "-n", "0", "--server", srv).fails(t, exitUsage, "--top 0")
}
