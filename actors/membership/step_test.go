package membership

import (
	"errors"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/roostkv/roost/partition"
)

// The state machine is driven here directly: messages carry a fake time, no
// network, no sleeps.

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const iv = DefaultInterval // the beat period of every test peer unless said otherwise

// newTestState is node "a" with P=271 and the default timings, changed by mods.
func newTestState(t *testing.T, mods ...func(*Config)) *state {
	t.Helper()
	cfg := Config{Self: Member{ID: "id-a", Name: "a", Incarnation: 100, Role: RoleServer, Addr: "nats://a", Partitions: 271}}
	for _, mod := range mods {
		mod(&cfg)
	}
	if err := cfg.validateLogic(); err != nil {
		t.Fatal(err)
	}
	return newState(cfg.withDefaults())
}

// hb is a beat of a peer with P=271 beating every iv.
func hb(name, id string, inc, seq uint64) Heartbeat {
	return Heartbeat{ID: id, Name: name, Incarnation: inc, Role: RoleServer, Addr: "nats://" + name,
		Partitions: 271, KeyHash: partition.KeyHash, Seq: seq, IntervalMS: iv.Milliseconds()}
}

func beat(s *state, b Heartbeat, at time.Time) output { return s.step(beatMsg{Beat: b, Now: at}) }

// tick runs the node's loop on time up to at: a tick every tick period since
// the loop last ran, the last one at at. It returns what the ticks asked for
// (their notes, dirty if any was, the last beat). A test that jumps the
// clock in one tick models a stall of the node (tickOnce).
func tick(s *state, at time.Time) output {
	var all output
	for {
		now := at
		if !s.lastRun.IsZero() && s.lastRun.Add(s.tickEvery).Before(at) {
			now = s.lastRun.Add(s.tickEvery)
		}
		out := s.step(tickMsg{Now: now})
		all.Notes = append(all.Notes, out.Notes...)
		all.Dirty = all.Dirty || out.Dirty
		if out.Beat != nil {
			all.Beat = out.Beat
		}
		if !now.Before(at) {
			return all
		}
	}
}

// tickOnce is one tick at at, however long after the loop last ran: a late
// tick when the node stalled.
func tickOnce(s *state, at time.Time) output { return s.step(tickMsg{Now: at}) }

// member returns name's member in the current view.
func member(t *testing.T, s *state, name string) Member {
	t.Helper()
	m, ok := s.view().Find(name)
	if !ok {
		t.Fatalf("%q not in the view %+v", name, s.view().Members)
	}
	return m
}

func wantStatus(t *testing.T, s *state, name string, want Status) {
	t.Helper()
	if got := member(t, s, name).Status; got != want {
		t.Fatalf("%s: status %s, want %s", name, got, want)
	}
}

func wantAbsent(t *testing.T, s *state, name string) {
	t.Helper()
	if m, ok := s.view().Find(name); ok {
		t.Fatalf("%q in the view, want absent: %+v", name, m)
	}
}

// notes returns the notes of out at level.
func notes(out output, level slog.Level) []note {
	var ns []note
	for _, n := range out.Notes {
		if n.Level == level {
			ns = append(ns, n)
		}
	}
	return ns
}

func TestSilenceThresholds(t *testing.T) {
	type check struct {
		after time.Duration // since the last beat
		want  Status
	}
	cases := []struct {
		name     string
		mod      func(*Config)
		interval time.Duration // the peer's announced period (0 = announces none)
		checks   []check
	}{
		{
			name: "defaults: suspect at 3 beats, dead at 6", interval: iv,
			checks: []check{{0, Alive}, {3*iv - 1, Alive}, {3 * iv, Suspect}, {6*iv - 1, Suspect}, {6 * iv, Dead}, {5 * time.Minute, Dead}},
		},
		{
			name: "configured counts", interval: iv,
			mod:    func(c *Config) { c.SuspectAfter, c.DeadAfter = 2, 4 },
			checks: []check{{2*iv - 1, Alive}, {2 * iv, Suspect}, {4*iv - 1, Suspect}, {4 * iv, Dead}},
		},
		{
			name: "silence counts in the peer's own period", interval: 2 * time.Second,
			checks: []check{{3 * iv, Alive}, {6 * time.Second, Suspect}, {12*time.Second - 1, Suspect}, {12 * time.Second, Dead}},
		},
		{
			name: "a peer announcing no period is judged by ours", interval: 0,
			mod:    func(c *Config) { c.Interval = 100 * time.Millisecond },
			checks: []check{{300*time.Millisecond - 1, Alive}, {300 * time.Millisecond, Suspect}, {600 * time.Millisecond, Dead}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var mods []func(*Config)
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			s := newTestState(t, mods...)
			b := hb("b", "id-b", 1, 1)
			b.IntervalMS = tc.interval.Milliseconds()
			beat(s, b, t0)
			wantStatus(t, s, "b", Alive)
			for _, c := range tc.checks {
				before := s.version
				prev := member(t, s, "b").Status
				tick(s, t0.Add(c.after))
				wantStatus(t, s, "b", c.want)
				if changed := s.version != before; changed != (prev != c.want) {
					t.Fatalf("at +%v: version %d -> %d, status %s -> %s", c.after, before, s.version, prev, c.want)
				}
				if c.want != Alive {
					if since := member(t, s, "b").Since; prev != c.want && !since.Equal(t0.Add(c.after)) {
						t.Fatalf("at +%v: Since %v", c.after, since)
					}
				}
			}
		})
	}
}

func TestBeatRevives(t *testing.T) {
	for _, silent := range []Status{Suspect, Dead} {
		t.Run(string(silent), func(t *testing.T) {
			s := newTestState(t)
			beat(s, hb("b", "id-b", 1, 1), t0)
			after := 3 * iv
			if silent == Dead {
				after = 6 * iv
			}
			tick(s, t0.Add(after))
			wantStatus(t, s, "b", silent)
			v := s.version
			out := beat(s, hb("b", "id-b", 1, 2), t0.Add(after+1))
			wantStatus(t, s, "b", Alive)
			if s.version != v+1 || !out.Dirty {
				t.Fatalf("version %d -> %d, dirty %v", v, s.version, out.Dirty)
			}
			if got := member(t, s, "b").LastSeen; !got.Equal(t0.Add(after + 1)) {
				t.Fatalf("LastSeen %v", got)
			}
		})
	}
}

func TestLeavingBeat(t *testing.T) {
	s := newTestState(t, func(c *Config) { c.ForgetAfter = time.Minute })
	beat(s, hb("b", "id-b", 1, 1), t0)
	v := s.version
	leave := hb("b", "id-b", 1, 2)
	leave.Leaving = true
	at := t0.Add(100 * time.Millisecond)
	out := beat(s, leave, at)
	wantStatus(t, s, "b", Left)
	if s.version != v+1 || len(notes(out, slog.LevelInfo)) != 1 {
		t.Fatalf("version %d -> %d, notes %+v", v, s.version, out.Notes)
	}
	// A left ID never returns, and silence does not make it dead.
	beat(s, hb("b", "id-b", 1, 3), at.Add(iv))
	tick(s, at.Add(10*iv))
	wantStatus(t, s, "b", Left)
	if got := member(t, s, "b").LastSeen; !got.Equal(at) {
		t.Fatalf("LastSeen moved to %v after leaving", got)
	}
	if s.version != v+1 {
		t.Fatalf("version %d, want %d", s.version, v+1)
	}
	// Forgotten a minute after leaving; its beats still do not bring it back.
	tick(s, at.Add(time.Minute-1))
	wantStatus(t, s, "b", Left)
	tick(s, at.Add(time.Minute))
	wantAbsent(t, s, "b")
	beat(s, hb("b", "id-b", 1, 4), at.Add(time.Minute+1))
	wantAbsent(t, s, "b")
	// A restart does.
	beat(s, hb("b", "id-b2", 2, 1), at.Add(time.Minute+2))
	wantStatus(t, s, "b", Alive)
}

func TestLeavingBeatOfUnknownIgnored(t *testing.T) {
	s := newTestState(t)
	b := hb("b", "id-b", 1, 1)
	b.Leaving = true
	if out := beat(s, b, t0); out.Dirty || s.version != 1 {
		t.Fatalf("dirty %v, version %d", out.Dirty, s.version)
	}
	wantAbsent(t, s, "b")
}

func TestRestartReplaces(t *testing.T) {
	for _, old := range []Status{Alive, Suspect, Dead, Left} {
		t.Run(string(old), func(t *testing.T) {
			s := newTestState(t)
			beat(s, hb("b", "id-b1", 1, 1), t0)
			now := t0
			switch old {
			case Suspect:
				now = t0.Add(3 * iv)
				tick(s, now)
			case Dead:
				now = t0.Add(6 * iv)
				tick(s, now)
			case Left:
				leave := hb("b", "id-b1", 1, 2)
				leave.Leaving = true
				beat(s, leave, now)
			}
			wantStatus(t, s, "b", old)
			v := s.version
			now = now.Add(time.Millisecond)
			fresh := hb("b", "id-b2", 2, 1)
			fresh.Tags = map[string]string{"zone": "b"}
			beat(s, fresh, now)
			m := member(t, s, "b")
			if m.ID != "id-b2" || m.Incarnation != 2 || m.Status != Alive || m.Tags["zone"] != "b" || !m.LastSeen.Equal(now) {
				t.Fatalf("after restart: %+v", m)
			}
			if s.version != v+1 {
				t.Fatalf("version %d -> %d", v, s.version)
			}
			// The old process, should it still beat, is stale.
			out := beat(s, hb("b", "id-b1", 1, 9), now.Add(time.Millisecond))
			if m := member(t, s, "b"); m.ID != "id-b2" || s.version != v+1 {
				t.Fatalf("old process took over: %+v", m)
			}
			if len(notes(out, slog.LevelWarn)) != 1 {
				t.Fatalf("stale beat not logged: %+v", out.Notes)
			}
		})
	}
}

func TestStaleIncarnationIgnored(t *testing.T) {
	s := newTestState(t)
	beat(s, hb("b", "id-b2", 5, 1), t0)
	v := s.version
	out := beat(s, hb("b", "id-b1", 4, 100), t0.Add(time.Millisecond))
	if m := member(t, s, "b"); m.ID != "id-b2" || m.Incarnation != 5 || s.version != v || out.Dirty {
		t.Fatalf("stale beat applied: %+v, version %d -> %d", m, v, s.version)
	}
	if len(notes(out, slog.LevelWarn)) != 1 {
		t.Fatalf("stale beat not logged: %+v", out.Notes)
	}
	// Logged once per logEvery, not on every beat.
	if out := beat(s, hb("b", "id-b1", 4, 101), t0.Add(iv)); len(out.Notes) != 0 {
		t.Fatalf("logged again within %v: %+v", logEvery, out.Notes)
	}
}

func TestNameConflict(t *testing.T) {
	s := newTestState(t)
	beat(s, hb("b", "id-first", 7, 1), t0)
	v := s.version
	out := beat(s, hb("b", "id-second", 7, 1), t0.Add(time.Millisecond))
	if m := member(t, s, "b"); m.ID != "id-first" || s.version != v {
		t.Fatalf("conflicting process took over: %+v", m)
	}
	if len(notes(out, slog.LevelError)) != 1 {
		t.Fatalf("conflict not logged at error level: %+v", out.Notes)
	}
	if out := beat(s, hb("b", "id-second", 7, 2), t0.Add(logEvery-1)); len(out.Notes) != 0 {
		t.Fatalf("logged again within %v: %+v", logEvery, out.Notes)
	}
	if out := beat(s, hb("b", "id-second", 7, 3), t0.Add(logEvery+time.Millisecond)); len(notes(out, slog.LevelError)) != 1 {
		t.Fatalf("not logged again after %v: %+v", logEvery, out.Notes)
	}
	// The first keeps beating and stays alive.
	beat(s, hb("b", "id-first", 7, 2), t0.Add(logEvery))
	tick(s, t0.Add(logEvery+iv))
	wantStatus(t, s, "b", Alive)
}

func TestOurNameClaimedByAnother(t *testing.T) {
	s := newTestState(t)
	for _, inc := range []uint64{99, 100, 101} {
		out := beat(s, hb("a", "id-other", inc, inc), t0.Add(time.Duration(inc)*logEvery))
		if len(notes(out, slog.LevelError)) != 1 {
			t.Fatalf("incarnation %d: not logged at error level: %+v", inc, out.Notes)
		}
		if m := member(t, s, "a"); m.ID != "id-a" || !m.Self || s.version != 1 {
			t.Fatalf("incarnation %d: self replaced: %+v", inc, m)
		}
	}
}

func TestPartitionCountRefused(t *testing.T) {
	s := newTestState(t)
	beat(s, hb("b", "id-b", 1, 1), t0)
	v := s.version
	odd := func(name, id string, seq uint64) Heartbeat {
		b := hb(name, id, 1, seq)
		b.Partitions = 64
		return b
	}
	out := beat(s, odd("c", "id-c", 1), t0)
	wantAbsent(t, s, "c")
	if s.version != v {
		t.Fatalf("view changed: version %d -> %d", v, s.version)
	}
	if errs := notes(out, slog.LevelError); len(errs) != 1 {
		t.Fatalf("refusal not logged at error level: %+v", out.Notes)
	}
	refused := s.refusedPeers()
	if len(refused) != 1 || refused[0].ID != "id-c" || refused[0].Partitions != 64 || refused[0].Status != Refused || !out.Dirty {
		t.Fatalf("refused %+v, dirty %v", refused, out.Dirty)
	}
	// Once per peer per logEvery, every time after that.
	if out := beat(s, odd("c", "id-c", 2), t0.Add(logEvery-1)); len(out.Notes) != 0 {
		t.Fatalf("logged again within %v: %+v", logEvery, out.Notes)
	}
	if out := beat(s, odd("d", "id-d", 1), t0.Add(logEvery)); len(notes(out, slog.LevelError)) != 1 {
		t.Fatalf("another refused peer not logged: %+v", out.Notes)
	}
	if out := beat(s, odd("c", "id-c", 3), t0.Add(logEvery)); len(notes(out, slog.LevelError)) != 1 {
		t.Fatalf("not logged again after %v: %+v", logEvery, out.Notes)
	}
	// A known member's name with another P does not touch the member.
	beat(s, odd("b", "id-b-odd", 2), t0.Add(logEvery))
	if m := member(t, s, "b"); m.ID != "id-b" || s.version != v {
		t.Fatalf("member b replaced by a refused peer: %+v", m)
	}
	wantAbsent(t, s, "c")
	// Dropped from the refused list once silent for DeadAfter beats.
	beat(s, odd("d", "id-d", 2), t0.Add(logEvery+iv))
	tick(s, t0.Add(logEvery+6*iv-1))
	if n := len(s.refusedPeers()); n != 3 {
		t.Fatalf("%d refused, want 3 (c, d, b-odd)", n)
	}
	tick(s, t0.Add(logEvery+6*iv))
	if r := s.refusedPeers(); len(r) != 1 || r[0].ID != "id-d" {
		t.Fatalf("refused after silence: %+v", r)
	}
}

func TestForceLeave(t *testing.T) {
	cases := []struct {
		name    string
		target  string
		silence time.Duration // of b before the request
		wantErr error
		want    Status // b's status after
	}{
		{name: "alive refused", target: "b", silence: 3*iv - 1, wantErr: ErrAlive, want: Alive},
		{name: "suspect", target: "b", silence: 3 * iv, want: Left},
		{name: "dead", target: "b", silence: 6 * iv, want: Left},
		{name: "unknown", target: "zz", silence: 6 * iv, wantErr: ErrUnknownMember, want: Dead},
		{name: "self", target: "a", silence: 6 * iv, wantErr: ErrSelf, want: Dead},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(t)
			beat(s, hb("b", "id-b", 1, 1), t0)
			now := t0.Add(tc.silence)
			tick(s, now)
			v := s.version
			out := s.step(forceLeaveRequest{Name: tc.target, Now: now})
			if !errors.Is(out.Err, tc.wantErr) {
				t.Fatalf("err %v, want %v", out.Err, tc.wantErr)
			}
			wantStatus(t, s, "b", tc.want)
			wantStatus(t, s, "a", Alive)
			if changed := s.version != v; changed != (tc.wantErr == nil) {
				t.Fatalf("version %d -> %d", v, s.version)
			}
			if tc.wantErr == nil {
				// Again: already left, fine, no change.
				if out := s.step(forceLeaveRequest{Name: tc.target, Now: now}); out.Err != nil || s.version != v+1 {
					t.Fatalf("second force-leave: %v, version %d", out.Err, s.version)
				}
			}
		})
	}
}

func TestForcedOutMemberStillBeatingReturns(t *testing.T) {
	s := newTestState(t)
	beat(s, hb("b", "id-b", 1, 1), t0)
	tick(s, t0.Add(3*iv))
	if out := s.step(forceLeaveRequest{Name: "b", Now: t0.Add(3 * iv)}); out.Err != nil {
		t.Fatal(out.Err)
	}
	wantStatus(t, s, "b", Left)
	out := beat(s, hb("b", "id-b", 1, 2), t0.Add(4*iv))
	wantStatus(t, s, "b", Alive)
	if len(notes(out, slog.LevelWarn)) != 1 {
		t.Fatalf("return not logged: %+v", out.Notes)
	}
}

// A server that turns proxy (a graceful leave draining its data) beats at
// once; its peers see the new role and keep it alive; after Leave it cannot.
func TestSetRole(t *testing.T) {
	a := newTestState(t)
	b := newTestState(t, func(c *Config) { c.Self.ID, c.Self.Name = "id-b", "b" })
	first := tick(a, t0)
	beat(b, *first.Beat, t0)
	vb := b.version
	out := a.step(setRoleRequest{Role: RoleProxy, Now: t0.Add(time.Millisecond)})
	if out.Err != nil || out.Beat == nil || out.Beat.Role != RoleProxy || member(t, a, "a").Role != RoleProxy {
		t.Fatalf("set role: err %v, beat %+v", out.Err, out.Beat)
	}
	beat(b, *out.Beat, t0.Add(2*time.Millisecond))
	if m := member(t, b, "a"); m.Role != RoleProxy || m.Status != Alive || b.version != vb+1 {
		t.Fatalf("peer sees role %s, status %s, version %d -> %d", m.Role, m.Status, vb, b.version)
	}
	a.step(leaveRequest{Now: t0.Add(3 * time.Millisecond)})
	if out := a.step(setRoleRequest{Role: RoleServer, Now: t0.Add(4 * time.Millisecond)}); !errors.Is(out.Err, ErrLeft) {
		t.Fatalf("set role after leave: %v, want ErrLeft", out.Err)
	}
}

func TestSetTags(t *testing.T) {
	a := newTestState(t)
	b := newTestState(t, func(c *Config) { c.Self.ID, c.Self.Name = "id-b", "b" })
	first := tick(a, t0) // a's first beat: b learns of a
	beat(b, *first.Beat, t0)
	wantStatus(t, b, "a", Alive)

	tags := map[string]string{"zone": "eu-1"}
	va, vb := a.version, b.version
	out := a.step(setTagsRequest{Tags: tags, Now: t0.Add(time.Millisecond)})
	if out.Err != nil || a.version != va+1 || !maps.Equal(member(t, a, "a").Tags, tags) {
		t.Fatalf("err %v, version %d -> %d, tags %v", out.Err, va, a.version, member(t, a, "a").Tags)
	}
	if out.Beat == nil || !maps.Equal(out.Beat.Tags, tags) || out.Beat.Seq != 2 {
		t.Fatalf("no beat at once with the tags: %+v", out.Beat)
	}
	beat(b, *out.Beat, t0.Add(2*time.Millisecond))
	if got := member(t, b, "a").Tags; !maps.Equal(got, tags) || b.version != vb+1 {
		t.Fatalf("peer sees tags %v, version %d -> %d", got, vb, b.version)
	}

	// The same tags: a beat, but no new version anywhere.
	out = a.step(setTagsRequest{Tags: map[string]string{"zone": "eu-1"}, Now: t0.Add(3 * time.Millisecond)})
	if out.Beat == nil || a.version != va+1 {
		t.Fatalf("same tags: beat %v, version %d", out.Beat, a.version)
	}
	beat(b, *out.Beat, t0.Add(4*time.Millisecond))
	if b.version != vb+1 {
		t.Fatalf("peer version %d after an unchanged beat", b.version)
	}

	// A beat overtaken by a newer one does not bring old tags back.
	old := *first.Beat
	beat(b, old, t0.Add(5*time.Millisecond))
	if got := member(t, b, "a").Tags; !maps.Equal(got, tags) {
		t.Fatalf("overtaken beat reverted tags to %v", got)
	}

	a.step(leaveRequest{Now: t0.Add(time.Second)})
	if out := a.step(setTagsRequest{Tags: nil, Now: t0.Add(time.Second)}); !errors.Is(out.Err, ErrLeft) {
		t.Fatalf("SetTags after leave: %v, want ErrLeft", out.Err)
	}
}

func TestForgetAfter(t *testing.T) {
	const forget = time.Minute
	s := newTestState(t, func(c *Config) { c.ForgetAfter = forget })
	beat(s, hb("b", "id-b", 1, 1), t0)
	dead := t0.Add(6 * iv)
	tick(s, dead)
	wantStatus(t, s, "b", Dead)
	tick(s, dead.Add(forget-1))
	wantStatus(t, s, "b", Dead)
	v := s.version
	out := tick(s, dead.Add(forget))
	wantAbsent(t, s, "b")
	if s.version != v+1 || !out.Dirty {
		t.Fatalf("version %d -> %d, dirty %v", v, s.version, out.Dirty)
	}
	// A forgotten dead process that beats again (a healed partition) returns.
	beat(s, hb("b", "id-b", 1, 2), dead.Add(forget+1))
	wantStatus(t, s, "b", Alive)
}

func TestForgottenNameStaleIncarnation(t *testing.T) {
	s := newTestState(t, func(c *Config) { c.ForgetAfter = time.Minute })
	beat(s, hb("b", "id-b2", 2, 1), t0)
	tick(s, t0.Add(6*iv))
	tick(s, t0.Add(6*iv+time.Minute))
	wantAbsent(t, s, "b")
	beat(s, hb("b", "id-b1", 1, 50), t0.Add(6*iv+time.Minute+1))
	wantAbsent(t, s, "b")
	// The record of the forgotten name goes after another ForgetAfter.
	tick(s, t0.Add(6*iv+2*time.Minute))
	beat(s, hb("b", "id-b1", 1, 51), t0.Add(6*iv+2*time.Minute+1))
	wantStatus(t, s, "b", Alive)
}

func TestBeatCadence(t *testing.T) {
	s := newTestState(t)
	var beats []time.Time
	var seqs []uint64
	for now := t0; now.Before(t0.Add(3*iv + iv/2)); now = now.Add(iv / 10) {
		if out := tick(s, now); out.Beat != nil {
			beats = append(beats, now)
			seqs = append(seqs, out.Beat.Seq)
			if out.Beat.IntervalMS != iv.Milliseconds() || out.Beat.ID != "id-a" || out.Beat.Partitions != 271 || out.Beat.Leaving {
				t.Fatalf("beat %+v", out.Beat)
			}
		}
	}
	want := []time.Time{t0, t0.Add(iv), t0.Add(2 * iv), t0.Add(3 * iv)}
	if len(beats) != len(want) {
		t.Fatalf("beats at %v, want %v", beats, want)
	}
	for i := range want {
		if !beats[i].Equal(want[i]) || seqs[i] != uint64(i+1) {
			t.Fatalf("beat %d at %v seq %d, want %v seq %d", i, beats[i], seqs[i], want[i], i+1)
		}
	}
	if got := member(t, s, "a").LastSeen; !got.Equal(t0.Add(3 * iv)) {
		t.Fatalf("self LastSeen %v", got)
	}
	// Ticks that jitter keep the cadence; a stall of more than an interval
	// beats once at once and restarts the cadence from there.
	if out := tickOnce(s, t0.Add(4*iv+time.Millisecond)); out.Beat == nil {
		t.Fatal("no beat at +4iv+1ms")
	}
	if out := tickOnce(s, t0.Add(5*iv-time.Millisecond)); out.Beat != nil {
		t.Fatal("beat before +5iv")
	}
	if out := tickOnce(s, t0.Add(5*iv)); out.Beat == nil {
		t.Fatal("no beat at +5iv")
	}
	stall := t0.Add(10*iv + 3*time.Millisecond)
	if out := tickOnce(s, stall); out.Beat == nil {
		t.Fatal("no beat after a stall")
	}
	if out := tickOnce(s, stall.Add(iv-1)); out.Beat != nil {
		t.Fatal("burst of beats after a stall")
	}
	if out := tickOnce(s, stall.Add(iv)); out.Beat == nil {
		t.Fatal("no beat an interval after the stall")
	}
}

func TestNewcomerGetsABeatAtTheNextTick(t *testing.T) {
	s := newTestState(t)
	tick(s, t0) // our first beat; the next is due at t0+iv
	if out := tick(s, t0.Add(iv/10)); out.Beat != nil {
		t.Fatal("beat before it is due")
	}
	beat(s, hb("b", "id-b", 1, 1), t0.Add(iv/10+1)) // b starts: it missed our beats
	beat(s, hb("c", "id-c", 1, 1), t0.Add(iv/10+2))
	beat(s, hb("b", "id-b", 1, 2), t0.Add(iv/10+3)) // b again: not new
	if out := tick(s, t0.Add(2*iv/10)); out.Beat == nil {
		t.Fatal("no beat at the tick after newcomers")
	}
	if out := tick(s, t0.Add(3*iv/10)); out.Beat != nil {
		t.Fatal("more than one beat for newcomers")
	}
	if out := tick(s, t0.Add(12*iv/10)); out.Beat == nil {
		t.Fatal("cadence not resumed an interval after the greeting")
	}
	// A known member's beat does not bring the next beat forward.
	beat(s, hb("b", "id-b", 1, 3), t0.Add(13*iv/10))
	if out := tick(s, t0.Add(14*iv/10)); out.Beat != nil {
		t.Fatal("beat for a known member")
	}
}

func TestSelfAndLeave(t *testing.T) {
	s := newTestState(t)
	first := tick(s, t0)
	// Our own beats come back from the bus: ignored.
	if out := beat(s, *first.Beat, t0); out.Dirty || len(out.Notes) != 0 {
		t.Fatalf("own beat applied: %+v", out)
	}
	// Self is alive however long we do not hear ourselves.
	tick(s, t0.Add(time.Hour))
	m := member(t, s, "a")
	if m.Status != Alive || !m.Self || m.ID != "id-a" || m.Role != RoleServer || m.Partitions != 271 {
		t.Fatalf("self %+v", m)
	}
	v := s.version
	out := s.step(leaveRequest{Now: t0.Add(time.Hour + 1)})
	wantStatus(t, s, "a", Left)
	if out.Beat == nil || !out.Beat.Leaving || s.version != v+1 {
		t.Fatalf("leave: beat %+v, version %d -> %d", out.Beat, v, s.version)
	}
	if out := tick(s, t0.Add(2*time.Hour)); out.Beat == nil || !out.Beat.Leaving {
		t.Fatalf("beat after leave: %+v", out.Beat)
	}
	// Leave again: idempotent, beats again, no new version.
	if out := s.step(leaveRequest{Now: t0.Add(2 * time.Hour)}); out.Beat == nil || s.version != v+1 {
		t.Fatalf("second leave: %+v, version %d", out.Beat, s.version)
	}
}

func TestPeerChangesAndVersion(t *testing.T) {
	s := newTestState(t)
	if s.version != 1 {
		t.Fatalf("initial version %d", s.version)
	}
	b := hb("b", "id-b", 1, 1)
	beat(s, b, t0) // joined
	if s.version != 2 {
		t.Fatalf("version %d after a join", s.version)
	}
	b.Seq, b.Extra = 2, []byte{1, 2}
	out := beat(s, b, t0.Add(iv)) // only LastSeen and Extra change
	if s.version != 2 || !out.Dirty {
		t.Fatalf("version %d, dirty %v after a plain beat", s.version, out.Dirty)
	}
	if m := member(t, s, "b"); string(m.Extra) != "\x01\x02" || !m.LastSeen.Equal(t0.Add(iv)) {
		t.Fatalf("extra %v, last seen %v", m.Extra, m.LastSeen)
	}
	for i, change := range []func(*Heartbeat){
		func(b *Heartbeat) { b.Tags = map[string]string{"k": "v"} },
		func(b *Heartbeat) { b.Role = RoleProxy },
		func(b *Heartbeat) { b.HTTP = "127.0.0.1:7721" },
		func(b *Heartbeat) { b.Addr = "nats://elsewhere" },
	} {
		b.Seq++
		change(&b)
		beat(s, b, t0.Add(iv))
		if want := uint64(3 + i); s.version != want {
			t.Fatalf("change %d: version %d, want %d", i, s.version, want)
		}
	}
	m := member(t, s, "b")
	if m.Role != RoleProxy || m.HTTP != "127.0.0.1:7721" || m.Addr != "nats://elsewhere" || m.Tags["k"] != "v" {
		t.Fatalf("member %+v", m)
	}
}

func TestViewIsACopy(t *testing.T) {
	s := newTestState(t, func(c *Config) { c.Self.Tags = map[string]string{"k": "v"} })
	v := s.view()
	v.Members[0].Tags["k"] = "changed"
	if got := member(t, s, "a").Tags["k"]; got != "v" {
		t.Fatalf("view shares tags with the state: %q", got)
	}
}

// A peer that maps keys to partitions with another hash (a node from before
// the change to FNV-1a 32 announces none) would disagree on every key's
// owners: refused, loudly, naming the hash.
func TestKeyHashRefused(t *testing.T) {
	s := newTestState(t)
	for _, h := range []string{"", "fnv1a64"} {
		old := hb("c", "id-c-"+h, 1, 1)
		old.KeyHash = h
		out := beat(s, old, t0)
		wantAbsent(t, s, "c")
		if errs := notes(out, slog.LevelError); len(errs) != 1 || !strings.Contains(errs[0].Msg, "another hash") {
			t.Fatalf("key hash %q: refusal not logged at error level: %+v", h, out.Notes)
		}
	}
	beat(s, hb("d", "id-d", 1, 1), t0) // same hash: admitted
	member(t, s, "d")
	if b := s.beat(t0); b.KeyHash != partition.KeyHash {
		t.Fatalf("own beat carries key hash %q", b.KeyHash)
	}
}

// A peer with another placement tag would compute another partition table:
// refused like another partition count, both ways round.
func TestPlacementTagRefused(t *testing.T) {
	s := newTestState(t) // no placement tag
	zoned := hb("c", "id-c", 1, 1)
	zoned.Placement = "zone"
	out := beat(s, zoned, t0)
	wantAbsent(t, s, "c")
	if errs := notes(out, slog.LevelError); len(errs) != 1 || !strings.Contains(errs[0].Msg, "placement-tag") {
		t.Fatalf("refusal not logged at error level naming the tag: %+v", out.Notes)
	}
	if r := s.refusedPeers(); len(r) != 1 || r[0].Placement != "zone" {
		t.Fatalf("refused %+v", r)
	}

	z := newTestState(t, func(c *Config) { c.Self.Placement = "zone" })
	beat(z, hb("b", "id-b", 1, 1), t0) // no tag: refused
	wantAbsent(t, z, "b")
	beat(z, zoned, t0) // same tag: admitted
	if m := member(t, z, "c"); m.Placement != "zone" {
		t.Fatalf("member c %+v", m)
	}
	if b := z.beat(t0); b.Placement != "zone" {
		t.Fatalf("own beat carries placement %q", b.Placement)
	}
}

// TestOwnStallsAreNotPeersSilence drives node a through stalls of its own
// (ticks that come late: CPU starvation, a GC pause) against a peer b that
// beats every iv. With the defaults a tick is due every 50 ms and one more
// than 100 ms late is a stall; b is suspect after 1.5 s and dead after 3 s of
// silence net of a's stalls, and dead 24 s after its last beat at the latest.
func TestOwnStallsAreNotPeersSilence(t *testing.T) {
	type event struct {
		kind string        // "run": ticks on time up to at; "stall": one tick at at; "beat": b beats at at
		at   time.Duration // since t0
		want Status        // b's status after the event
	}
	// every repeats a cycle of events n times, each shifted by period.
	every := func(n int, period time.Duration, cycle ...event) []event {
		var evs []event
		for i := range n {
			for _, e := range cycle {
				e.at += time.Duration(i) * period
				evs = append(evs, e)
			}
		}
		return evs
	}
	cases := []struct {
		name   string
		events []event
	}{
		{
			name: "a stall of 10 s is not b's silence; b is judged on the time a runs after it",
			events: []event{
				{"beat", 0, Alive}, {"run", iv, Alive},
				{"stall", iv + 10*time.Second, Alive}, // 600 ms of silence counted: 500 before, 100 of grace
				{"run", iv + 10*time.Second + 850*time.Millisecond, Alive},
				{"run", iv + 10*time.Second + 900*time.Millisecond, Suspect},
				{"run", iv + 10*time.Second + 2400*time.Millisecond - 1, Suspect},
				{"run", iv + 10*time.Second + 2400*time.Millisecond, Dead},
			},
		},
		{
			name: "a beat after the stall keeps b alive",
			events: []event{
				{"beat", 0, Alive}, {"run", iv, Alive},
				{"stall", iv + 10*time.Second, Alive},
				{"beat", iv + 10*time.Second + time.Millisecond, Alive},
				{"run", iv + 10*time.Second + 1400*time.Millisecond, Alive},
			},
		},
		{
			// a runs every 700 ms (each tick 650 ms late); b's beats reach a
			// only every fifth run, 3.5 s apart, as a's stalls and the bus
			// delay them. Every run counts 100 ms of b's silence.
			name: "repeated stalls: b heard every fifth run stays alive",
			events: every(6, 3500*time.Millisecond,
				event{"beat", 0, Alive},
				event{"stall", 700 * time.Millisecond, Alive}, event{"stall", 1400 * time.Millisecond, Alive},
				event{"stall", 2100 * time.Millisecond, Alive}, event{"stall", 2800 * time.Millisecond, Alive},
				event{"stall", 3500*time.Millisecond - 1, Alive}),
		},
		{
			// The same stalls with b silent for good: 100 ms counted a run,
			// suspect at the 15th, dead at the 30th (21 s), within the bound.
			name: "repeated stalls: b silent for good is dead after 5 x DeadAfter late ticks",
			events: append(append([]event{{"beat", 0, Alive}},
				every(14, 700*time.Millisecond, event{"stall", 700 * time.Millisecond, Alive})...),
				append(every(15, 700*time.Millisecond, event{"stall", 15 * 700 * time.Millisecond, Suspect}),
					event{"stall", 30 * 700 * time.Millisecond, Dead})...),
		},
		{
			name: "at most 7 x DeadAfter periods of stalls are excused: dead 24 s after the last beat",
			events: []event{
				{"beat", 0, Alive}, {"run", iv, Alive},
				{"stall", 23 * time.Second, Suspect}, // 21 s excused, 2 s counted
				{"run", 24*time.Second - 1, Suspect},
				{"run", 24 * time.Second, Dead},
			},
		},
		{
			name:   "a stall longer than the cap: dead at once",
			events: []event{{"beat", 0, Alive}, {"run", iv, Alive}, {"stall", time.Minute, Dead}},
		},
		{
			// Beats from others and requests show a ran between its ticks.
			name: "a tick late after a beat of another peer is a stall only from that beat",
			events: []event{
				{"beat", 0, Alive}, {"run", 2500 * time.Millisecond, Suspect},
				{"beat-c", 2900 * time.Millisecond, Suspect},
				{"stall", 3000 * time.Millisecond, Dead}, // 100 ms since a ran: no stall
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestState(t)
			seq := uint64(0)
			for _, e := range tc.events {
				at := t0.Add(e.at)
				switch e.kind {
				case "run":
					tick(s, at)
				case "stall":
					tickOnce(s, at)
				case "beat":
					seq++
					beat(s, hb("b", "id-b", 1, seq), at)
				case "beat-c":
					beat(s, hb("c", "id-c", 1, 1), at)
				}
				if got := member(t, s, "b").Status; got != e.want {
					t.Fatalf("after %s at +%v: b is %s, want %s", e.kind, e.at, got, e.want)
				}
			}
		})
	}
}

// TestQueuedBeatsHeardBeforeJudging: the beats that waited in the loop's
// queue behind a tick (tickMsg.Queued) count as heard before the tick judges
// silences, and our stall is not credited to the peers they came from.
func TestQueuedBeatsHeardBeforeJudging(t *testing.T) {
	queued := func(s *state, at time.Time, bs ...Heartbeat) output {
		return s.step(tickMsg{Now: at, Queued: bs})
	}
	t.Run("a beat queued behind the tick keeps its sender alive", func(t *testing.T) {
		s := newTestState(t)
		beat(s, hb("b", "id-b", 1, 1), t0)
		tick(s, t0.Add(6*iv-iv/10))
		wantStatus(t, s, "b", Suspect)
		out := queued(s, t0.Add(6*iv), hb("b", "id-b", 1, 2))
		wantStatus(t, s, "b", Alive)
		if !member(t, s, "b").LastSeen.Equal(t0.Add(6*iv)) || len(notes(out, slog.LevelWarn)) != 0 {
			t.Fatalf("b %+v, notes %+v", member(t, s, "b"), out.Notes)
		}
	})
	t.Run("after a stall, the queued sender is judged from its beat, the others net of the stall", func(t *testing.T) {
		s := newTestState(t)
		beat(s, hb("b", "id-b", 1, 1), t0)
		beat(s, hb("c", "id-c", 1, 1), t0)
		tick(s, t0.Add(iv))
		stalled := t0.Add(iv + 10*time.Second)
		queued(s, stalled, hb("b", "id-b", 1, 2))
		wantStatus(t, s, "b", Alive)
		wantStatus(t, s, "c", Alive) // 600 ms counted: 500 before the stall, 100 of grace
		tick(s, stalled.Add(900*time.Millisecond))
		wantStatus(t, s, "c", Suspect)
		wantStatus(t, s, "b", Alive)
		tick(s, stalled.Add(1500*time.Millisecond-1))
		wantStatus(t, s, "b", Alive) // no credit from the stall before its beat
		tick(s, stalled.Add(1500*time.Millisecond))
		wantStatus(t, s, "b", Suspect)
		tick(s, stalled.Add(2400*time.Millisecond))
		wantStatus(t, s, "c", Dead)
	})
}
