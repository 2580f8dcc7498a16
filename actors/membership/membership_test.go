package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/internal/testkit"
)

// These tests run Membership actors over a real embedded NATS server, each
// on its own TCP connection.

func startServer(t *testing.T) *server.Server { return testkit.StartNATS(t) }

// newMember makes (without starting) the membership of name on its own
// connection; mod may change the config.
func newMember(t *testing.T, srv *server.Server, name string, mod func(*Config)) *Membership {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL(), nats.Name(name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cfg := Config{
		Self: Member{ID: nuid.Next(), Name: name, Incarnation: uint64(time.Now().UnixMilli()), Role: RoleServer,
			Addr: srv.ClientURL(), Partitions: 271},
		Interval: 50 * time.Millisecond,
		Conn:     nc,
		Subjects: wire.NewSubjects("mtest"),
		Logger:   slog.New(slog.NewTextHandler(t.Output(), nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop) // before the connection closes and the test ends
	return m
}

func startMember(t *testing.T, srv *server.Server, name string, mod func(*Config)) *Membership {
	t.Helper()
	m := newMember(t, srv, name, mod)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkFor polls cond until it returns nil; it fails the test with cond's
// last error once total has passed (testkit.Eventually).
func checkFor(t *testing.T, total time.Duration, cond func() error) {
	t.Helper()
	testkit.Eventually(t, total, cond)
}

// hasStatus is a checkFor condition: observer sees name with status want.
func hasStatus(observer *Membership, name string, want Status) func() error {
	return func() error {
		m, ok := observer.View().Find(name)
		if !ok {
			return fmt.Errorf("%s does not see %s", observer.cfg.Self.Name, name)
		}
		if m.Status != want {
			return fmt.Errorf("%s sees %s %s, want %s", observer.cfg.Self.Name, name, m.Status, want)
		}
		return nil
	}
}

func TestClusterOfThree(t *testing.T) {
	srv := startServer(t)
	const interval = 50 * time.Millisecond
	a := startMember(t, srv, "a", nil)
	b := startMember(t, srv, "b", nil)
	c := startMember(t, srv, "c", nil)
	all := []*Membership{a, b, c}
	views, cancel := a.Subscribe()
	defer cancel()

	// Everyone sees everyone alive.
	checkFor(t, 2*time.Second, func() error {
		for _, m := range all {
			if n := len(m.View().Live(RoleServer)); n != 3 {
				return fmt.Errorf("%s sees %d live servers: %+v", m.cfg.Self.Name, n, m.View().Members)
			}
		}
		return nil
	})
	for _, m := range all {
		v := m.View()
		if me, ok := v.Self(); !ok || me.Name != m.cfg.Self.Name || me.Status != Alive {
			t.Fatalf("%s: self %+v", m.cfg.Self.Name, me)
		}
		if other, _ := v.Find("b"); other.Partitions != 271 || other.Addr != srv.ClientURL() || other.ID != b.cfg.Self.ID {
			t.Fatalf("%s sees b as %+v", m.cfg.Self.Name, other)
		}
	}
	ctx, cancelCtx := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelCtx()
	if err := a.ForceLeave(ctx, "c"); !errors.Is(err, ErrAlive) {
		t.Fatalf("ForceLeave of an alive member = %v, want ErrAlive", err)
	}

	// b stops without leaving: dead for the others after DeadAfter beats.
	b.Stop()
	stopped := time.Now()
	dead := time.Duration(DefaultDeadAfter) * interval
	checkFor(t, dead+500*time.Millisecond, func() error {
		if err := hasStatus(a, "b", Dead)(); err != nil {
			return err
		}
		return hasStatus(c, "b", Dead)()
	})
	// Its last beat left at most an interval (plus a tick) before Stop, so
	// dead any earlier than this would be a premature verdict.
	if took := time.Since(stopped); took < dead-interval-interval/5 {
		t.Fatalf("b dead after %v, before its %v of silence could have passed", took, dead)
	}
	if err := a.ForceLeave(ctx, "b"); err != nil {
		t.Fatalf("ForceLeave of a dead member: %v", err)
	}
	if err := hasStatus(a, "b", Left)(); err != nil {
		t.Fatal(err)
	}

	// c leaves: left for a at once, not after a silence.
	if err := c.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if err := hasStatus(c, "c", Left)(); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 300*time.Millisecond, hasStatus(a, "c", Left))
	if err := c.SetTags(ctx, map[string]string{"k": "v"}); !errors.Is(err, ErrLeft) {
		t.Fatalf("SetTags after Leave = %v, want ErrLeft", err)
	}

	// The subscriber's newest view has it all.
	checkFor(t, time.Second, func() error {
		v := <-views
		if v.Version != a.View().Version {
			return fmt.Errorf("subscriber at version %d, view at %d", v.Version, a.View().Version)
		}
		if m, _ := v.Find("b"); m.Status != Left {
			return fmt.Errorf("subscriber sees b %s", m.Status)
		}
		if m, _ := v.Find("c"); m.Status != Left {
			return fmt.Errorf("subscriber sees c %s", m.Status)
		}
		return nil
	})
	if live := a.View().Live(""); len(live) != 1 || live[0].Name != "a" {
		t.Fatalf("a's live members: %+v", live)
	}
}

func TestTagsExtraAndRefusal(t *testing.T) {
	srv := startServer(t)
	// A long interval: whatever arrives within a fraction of it was sent at once.
	slow := func(c *Config) { c.Interval = 2 * time.Second }
	a := startMember(t, srv, "a", slow)
	b := startMember(t, srv, "b", slow)
	odd := startMember(t, srv, "odd", func(c *Config) { slow(c); c.Self.Partitions = 64 })
	checkFor(t, time.Second, hasStatus(a, "b", Alive))
	checkFor(t, time.Second, hasStatus(b, "a", Alive))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tags := map[string]string{"zone": "eu-1"}
	v := a.View().Version
	if err := b.SetTags(ctx, tags); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 500*time.Millisecond, func() error {
		if m, _ := a.View().Find("b"); !maps.Equal(m.Tags, tags) {
			return fmt.Errorf("a sees b's tags %v", m.Tags)
		}
		return nil
	})
	if a.View().Version <= v {
		t.Fatal("a's view version did not rise with b's tags")
	}

	// Extra rides the following beats.
	b.SetExtra([]byte("log-ids"))
	checkFor(t, 3*time.Second, func() error {
		if m, _ := a.View().Find("b"); string(m.Extra) != "log-ids" {
			return fmt.Errorf("a sees b's extra %q", m.Extra)
		}
		return nil
	})

	// The node with another partition count is refused by both sides.
	for _, m := range []*Membership{a, b} {
		if _, ok := m.View().Find("odd"); ok {
			t.Fatalf("%s admitted a peer with another partition count", m.cfg.Self.Name)
		}
		r := m.Refused()
		if len(r) != 1 || r[0].Name != "odd" || r[0].Partitions != 64 || r[0].Status != Refused {
			t.Fatalf("%s refused %+v", m.cfg.Self.Name, r)
		}
	}
	checkFor(t, 3*time.Second, func() error {
		if r := odd.Refused(); len(r) != 2 {
			return fmt.Errorf("odd refused %+v, want a and b", r)
		}
		return nil
	})
	if n := len(odd.View().Members); n != 1 {
		t.Fatalf("odd's view has %d members", n)
	}
}

func TestInjectedTickerAndClock(t *testing.T) {
	srv := startServer(t)
	var nowNS atomic.Int64
	nowNS.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, nowNS.Load()) }
	ticks := make(chan time.Time)
	a := startMember(t, srv, "a", func(c *Config) { c.Clock, c.Ticker, c.Interval = clock, ticks, time.Second })
	b := startMember(t, srv, "b", func(c *Config) { c.Interval = time.Second })
	// b beat at Start; a greets the newcomer at its next tick.
	checkFor(t, time.Second, hasStatus(a, "b", Alive))
	ticks <- time.Time{}
	checkFor(t, time.Second, hasStatus(b, "a", Alive))
	if m, _ := a.View().Find("b"); !m.LastSeen.Equal(t0) {
		t.Fatalf("LastSeen %v, want the injected clock's %v", m.LastSeen, t0)
	}
	b.Stop()
	// Only a tick of the injected ticker judges silences, by the injected
	// clock. The ticks come on time (every Interval/10): one tick seconds
	// late would be a stall of a's, not b's silence.
	runTo := func(to time.Time) {
		t.Helper()
		for now := time.Unix(0, nowNS.Load()); now.Before(to); {
			if now = now.Add(100 * time.Millisecond); now.After(to) {
				now = to
			}
			nowNS.Store(now.UnixNano())
			ticks <- time.Time{}
			if err := a.Ready(context.Background()); err != nil { // the tick has been handled
				t.Fatal(err)
			}
		}
	}
	runTo(t0.Add(6*time.Second - 1))
	if err := hasStatus(a, "b", Suspect)(); err != nil {
		t.Fatal(err)
	}
	runTo(t0.Add(6 * time.Second))
	if err := hasStatus(a, "b", Dead)(); err != nil {
		t.Fatal(err)
	}
}

func TestLifecycle(t *testing.T) {
	srv := startServer(t)
	m := newMember(t, srv, "a", nil)
	ctx := context.Background()
	if err := m.Leave(ctx); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Leave before Start = %v, want ErrNotRunning", err)
	}
	if v := m.View(); v.Version != 1 || len(v.Members) != 1 || !v.Members[0].Self {
		t.Fatalf("view before Start: %+v", v)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err == nil {
		t.Fatal("second Start succeeded")
	}
	if err := m.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	views, cancel := m.Subscribe()
	defer cancel()
	m.Stop()
	m.Stop()          // idempotent
	for range views { // closed by Stop
	}
	if err := m.Start(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Start after Stop = %v, want ErrNotRunning", err)
	}
	if err := m.SetTags(ctx, nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("SetTags after Stop = %v, want ErrNotRunning", err)
	}
	if _, ok := m.View().Find("a"); !ok {
		t.Fatal("View empty after Stop")
	}
}
