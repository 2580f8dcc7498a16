package harness

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// countingTarget is an Extra target that answers every call and counts them.
type countingTarget struct{ gets, sets atomic.Int64 }

func (c *countingTarget) Get(string) error         { c.gets.Add(1); return nil }
func (c *countingTarget) Set(string, []byte) error { c.sets.Add(1); return nil }
func (c *countingTarget) Close()                   {}

// TestRunPreloadedExternalEchoExtra runs against keys a run before left
// (Preloaded: no preload of its own), with the echo served by another
// connection under a base of the caller's (EchoServer, ServeEcho) and an
// Extra target in the same rounds: the way bench/scaling drives it.
func TestRunPreloadedExternalEchoExtra(t *testing.T) {
	n := startNode(t, "")
	load := shortConfig()
	load.Server, load.Keep, load.KeyPrefix, load.Compare = n.ClientURL(), true, "pre.", false
	run(t, load) // writes the keys, and leaves them

	echoConn, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer echoConn.Close()
	if err := ServeEcho(echoConn, "ext-echo", EchoFixed, load.ValueSize); err != nil {
		t.Fatal(err)
	}
	extra := &countingTarget{}
	cfg := load
	cfg.Compare, cfg.Preloaded, cfg.EchoServer, cfg.EchoBase = true, true, n.ClientURL(), "ext-echo"
	cfg.Extra = []ExtraTarget{{Name: "other", Open: func() (Target, error) { return extra, nil }}}
	setsBefore := n.StoreStats().Sets
	rep, _ := run(t, cfg)
	if got := n.StoreStats().Sets; got != setsBefore {
		t.Errorf("a preloaded get run wrote %d keys, want none", got-setsBefore)
	}
	checkRow(t, rep, NameRoost, 3)
	checkRow(t, rep, NameEcho, 3)
	other := checkRow(t, rep, "other", 3)
	if len(rep.Rows) != 3 || rep.Rows[2].Name != "other" {
		t.Errorf("rows %v, want echo, roost, other", rep.Rows)
	}
	if got := extra.gets.Load(); got < other.Ops {
		t.Errorf("extra target saw %d gets, its row counts %d", got, other.Ops)
	}
	if got := echoConn.Stats().InMsgs; got < uint64(rep.Row(NameEcho).Ops) {
		t.Errorf("the external echo got %d requests, the echo row counts %d", got, rep.Row(NameEcho).Ops)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "no preload") {
		t.Errorf("notes %q do not say the preload was skipped", rep.Notes)
	}

	// Preloaded over keys nobody wrote: every get misses, the run fails.
	cfg.KeyPrefix, cfg.Extra = "never.", nil
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Run(ctx, cfg); err == nil {
		t.Error("a Preloaded run over keys never written succeeded")
	}
}
