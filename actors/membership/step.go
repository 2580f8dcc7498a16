package membership

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/roostkv/roost/partition"
)

// Errors of the package.
var (
	ErrNotRunning    = errors.New("membership: not running")
	ErrUnknownMember = errors.New("membership: unknown member")
	ErrAlive         = errors.New("membership: member is alive")
	ErrSelf          = errors.New("membership: cannot force this node out; use Leave")
	ErrLeft          = errors.New("membership: this node has left the cluster")
)

// state is the membership state machine: pure logic, no I/O, no clock. The
// loop feeds it messages stamped with the time (step) and does what the
// returned output says.
type state struct {
	self         string        // our name: the key of our entry in members
	selfID       string        // our process ID
	partitions   int           // our partition count P
	placement    string        // our placement tag; peers must have the same
	interval     time.Duration // our beat period
	tickEvery    time.Duration // the loop's tick period: a longer gap between two messages is a stall of ours
	suspectAfter int           // beat periods of silence before suspect
	deadAfter    int           // beat periods of silence before dead
	forgetAfter  time.Duration // how long dead and left members stay

	members  map[string]*entry     // by name, self included
	gone     map[string]goneRecord // forgotten members by name, kept another forgetAfter to recognise their stale beats
	refused  map[string]*refusal   // peers with another partition count, by ID
	lastLog  map[string]time.Time  // rate-limited log lines: key -> when last logged
	version  uint64                // of the view
	seq      uint64                // of our last beat
	nextBeat time.Time             // when our next regular beat is due; zero = at the next tick
	lastRun  time.Time             // when the loop last stepped a message: it was running then
}

// entry is a member as the state machine keeps it.
type entry struct {
	Member
	interval time.Duration // the beat period the member announces
	seq      uint64        // highest beat sequence applied
	forced   bool          // left by ForceLeave, not by its own announcement: a beat revives it
	stalled  time.Duration // our own stalls since its last beat: time we could not hear it, not its silence
}

// goneRecord remembers a forgotten member.
type goneRecord struct {
	ID          string
	Incarnation uint64
	Left        bool      // it announced its leave: its ID never returns
	At          time.Time // when it was forgotten
}

// refusal is a peer refused for its partition count.
type refusal struct {
	Member
	interval time.Duration
}

// output is what one step asks the loop to do.
type output struct {
	Beat  *Heartbeat // publish this beat now (the loop adds Extra)
	Notes []note     // log these
	Dirty bool       // the published snapshot (view, refused peers) is out of date
	Err   error      // the answer to a request
}

// note is a log line the loop writes.
type note struct {
	Level slog.Level
	Msg   string
	Args  []any // slog key-value pairs
}

func (o *output) log(level slog.Level, msg string, args ...any) {
	o.Notes = append(o.Notes, note{Level: level, Msg: msg, Args: args})
}

// newState starts the state machine with our own member alive, view version 1.
// cfg has its defaults filled in.
func newState(cfg Config) *state {
	me := cfg.Self.clone()
	me.Status, me.Self, me.Extra = Alive, true, nil
	me.LastSeen, me.Since = time.Time{}, time.Time{}
	return &state{
		self:         me.Name,
		selfID:       me.ID,
		partitions:   me.Partitions,
		placement:    me.Placement,
		interval:     cfg.Interval,
		tickEvery:    tickPeriod(cfg.Interval),
		suspectAfter: cfg.SuspectAfter,
		deadAfter:    cfg.DeadAfter,
		forgetAfter:  cfg.ForgetAfter,
		members:      map[string]*entry{me.Name: {Member: me, interval: cfg.Interval}},
		gone:         map[string]goneRecord{},
		refused:      map[string]*refusal{},
		lastLog:      map[string]time.Time{},
		version:      1,
	}
}

// step applies one message.
func (s *state) step(msg message) output {
	defer s.ran(msg.stamp())
	switch m := msg.(type) {
	case tickMsg:
		return s.onTick(m)
	case beatMsg:
		return s.onBeat(m)
	case forceLeaveRequest:
		return s.onForceLeave(m)
	case setTagsRequest:
		return s.onSetTags(m)
	case setRoleRequest:
		return s.onSetRole(m)
	case leaveRequest:
		return s.onLeave(m)
	case pingRequest:
		return output{}
	}
	panic(fmt.Sprintf("membership: unknown message %T", msg))
}

// onTick beats when a beat is due, then judges every member by its silence:
// suspect once silent for suspectAfter of its beat periods, dead once silent
// for deadAfter (both inclusive: at exactly the threshold), forgotten once
// dead or left for forgetAfter. A silence is the time since the member's last
// beat less the time this node itself stalled since (see stall): a node that
// did not run could not hear its peers.
func (s *state) onTick(m tickMsg) (out output) {
	now := m.Now
	stall := s.stall(now)
	if stall >= s.interval {
		s.loud(&out, now, "stall", slog.LevelWarn, "this node stalled (CPU starvation, a GC pause, a suspended process?); its peers' silence during the stall is not counted against them",
			"stalled", stall, "since", s.lastRun)
	}
	for i := range m.Queued {
		o := s.onBeat(beatMsg{Beat: m.Queued[i], Now: now})
		out.Notes = append(out.Notes, o.Notes...)
		out.Dirty = out.Dirty || o.Dirty
	}
	if s.nextBeat.IsZero() || !now.Before(s.nextBeat) {
		out.Beat = s.beat(now)
		out.Dirty = true
		// Keep the cadence (due times every interval from the first beat)
		// unless we fell behind by a whole interval.
		s.nextBeat = s.nextBeat.Add(s.interval)
		if !s.nextBeat.After(now) {
			s.nextBeat = now.Add(s.interval)
		}
	}
	for name, e := range s.members {
		if e.Self {
			continue
		}
		switch e.Status {
		case Alive, Suspect:
			dead := time.Duration(s.deadAfter) * e.interval
			// Only the part of our stall after its last beat: one queued
			// behind this tick was heard at now.
			e.stalled = min(e.stalled+min(stall, max(now.Sub(e.LastSeen), 0)), (maxStallCredit-1)*dead)
			silent := now.Sub(e.LastSeen) - e.stalled
			switch {
			case silent >= dead:
				out.log(slog.LevelWarn, "member dead", "name", name, "id", e.ID, "silent", silent, "we_stalled", e.stalled)
				s.setStatus(e, Dead, now)
				out.Dirty = true
			case silent >= time.Duration(s.suspectAfter)*e.interval && e.Status == Alive:
				out.log(slog.LevelInfo, "member suspect", "name", name, "id", e.ID, "silent", silent, "we_stalled", e.stalled)
				s.setStatus(e, Suspect, now)
				out.Dirty = true
			}
		case Dead, Left:
			if now.Sub(e.Since) >= s.forgetAfter {
				out.log(slog.LevelInfo, "member forgotten", "name", name, "id", e.ID, "status", e.Status)
				s.gone[name] = goneRecord{ID: e.ID, Incarnation: e.Incarnation, Left: e.Status == Left && !e.forced, At: now}
				delete(s.members, name)
				s.version++
				out.Dirty = true
			}
		}
	}
	for name, g := range s.gone {
		if now.Sub(g.At) >= s.forgetAfter {
			delete(s.gone, name)
		}
	}
	for id, r := range s.refused {
		if now.Sub(r.LastSeen) >= time.Duration(s.deadAfter)*r.interval {
			delete(s.refused, id)
			out.Dirty = true
		}
	}
	for k, t := range s.lastLog {
		if now.Sub(t) >= logEvery {
			delete(s.lastLog, k)
		}
	}
	return out
}

// onBeat applies a heartbeat from the bus.
func (s *state) onBeat(m beatMsg) (out output) {
	b, now := &m.Beat, m.Now
	switch {
	case b.ID == s.selfID: // our own, back from the bus
		return out
	case b.ID == "" || b.Name == "":
		out.log(slog.LevelDebug, "heartbeat without id or name ignored", "id", b.ID, "name", b.Name)
		return out
	case b.Partitions != s.partitions || b.Placement != s.placement || b.KeyHash != partition.KeyHash:
		return s.refuse(b, now)
	case b.Name == s.self:
		s.loud(&out, now, "self:"+b.ID, slog.LevelError, "another process uses this node's name; its heartbeats are ignored",
			"name", b.Name, "id", b.ID, "incarnation", b.Incarnation, "addr", b.Addr, "our_incarnation", s.members[s.self].Incarnation)
		return out
	}
	e, known := s.members[b.Name]
	switch {
	case !known:
		return s.admit(b, now)
	case b.ID == e.ID:
		return s.refresh(e, b, now)
	case b.Incarnation > e.Incarnation:
		return s.replace(e, b, now)
	case b.Incarnation < e.Incarnation:
		s.loud(&out, now, "stale:"+b.ID, slog.LevelWarn, "heartbeat of an older incarnation ignored (a stale process?)",
			"name", b.Name, "id", b.ID, "incarnation", b.Incarnation, "current_id", e.ID, "current_incarnation", e.Incarnation)
	default:
		s.loud(&out, now, "conflict:"+b.ID, slog.LevelError, "name conflict: two processes with one name and incarnation; keeping the first",
			"name", b.Name, "id", b.ID, "addr", b.Addr, "kept_id", e.ID, "kept_addr", e.Addr, "incarnation", b.Incarnation)
	}
	return out
}

// admit adds a member we do not know, unless it is the stale or left
// process of a name we forgot.
func (s *state) admit(b *Heartbeat, now time.Time) (out output) {
	if g, ok := s.gone[b.Name]; ok {
		if b.Incarnation < g.Incarnation {
			s.loud(&out, now, "stale:"+b.ID, slog.LevelWarn, "heartbeat of an older incarnation ignored (a stale process?)",
				"name", b.Name, "id", b.ID, "incarnation", b.Incarnation, "forgotten_incarnation", g.Incarnation)
			return out
		}
		if b.ID == g.ID && g.Left {
			return out // a left ID never returns
		}
	}
	if b.Leaving {
		return out // a process we never knew goes: nothing to record
	}
	delete(s.gone, b.Name)
	e := newEntry(b, s.interval, now)
	s.members[b.Name] = e
	s.version++
	out.Dirty = true
	s.greet(now)
	out.log(slog.LevelInfo, "member joined", "name", e.Name, "id", e.ID, "role", e.Role, "addr", e.Addr, "incarnation", e.Incarnation)
	return out
}

// refresh applies a beat of a known member's current process.
func (s *state) refresh(e *entry, b *Heartbeat, now time.Time) (out output) {
	if e.Status == Left && !e.forced {
		return out // a left ID never returns
	}
	e.LastSeen, e.Extra, e.interval, e.stalled = now, b.Extra, b.interval(s.interval), 0
	out.Dirty = true
	if b.Seq > e.seq { // not a beat overtaken by a newer one
		e.seq = b.Seq
		if e.Role != b.Role || e.Addr != b.Addr || e.HTTP != b.HTTP || !maps.Equal(e.Tags, b.Tags) {
			e.Role, e.Addr, e.HTTP, e.Tags = b.Role, b.Addr, b.HTTP, b.Tags
			s.version++
			out.log(slog.LevelInfo, "member updated", "name", e.Name, "role", e.Role, "tags", e.Tags, "addr", e.Addr, "http", e.HTTP)
		}
	}
	switch {
	case b.Leaving:
		if e.Status != Left || e.forced {
			out.log(slog.LevelInfo, "member left", "name", e.Name, "id", e.ID)
			e.forced = false
			s.setStatus(e, Left, now)
		}
	case e.Status != Alive:
		if e.forced {
			out.log(slog.LevelWarn, "member forced out is still beating; it is back", "name", e.Name, "id", e.ID)
		} else {
			out.log(slog.LevelInfo, "member alive again", "name", e.Name, "id", e.ID, "was", e.Status)
		}
		e.forced = false
		s.setStatus(e, Alive, now)
	}
	return out
}

// replace puts a restarted member (a higher incarnation) in place of its
// previous process.
func (s *state) replace(old *entry, b *Heartbeat, now time.Time) (out output) {
	e := newEntry(b, s.interval, now)
	if b.Leaving {
		e.Status = Left
	}
	s.members[b.Name] = e
	s.version++
	out.Dirty = true
	s.greet(now)
	out.log(slog.LevelInfo, "member restarted", "name", e.Name, "id", e.ID, "incarnation", e.Incarnation,
		"old_id", old.ID, "old_incarnation", old.Incarnation, "old_status", old.Status)
	return out
}

// refuse records a peer with another partition count or placement tag and
// says so, loudly.
func (s *state) refuse(b *Heartbeat, now time.Time) (out output) {
	r, ok := s.refused[b.ID]
	if !ok {
		r = &refusal{Member: newEntry(b, s.interval, now).Member}
		r.Status = Refused
		s.refused[b.ID] = r
	}
	r.Role, r.Addr, r.HTTP, r.Tags, r.Extra = b.Role, b.Addr, b.HTTP, b.Tags, b.Extra
	r.LastSeen, r.interval = now, b.interval(s.interval)
	out.Dirty = true
	if b.KeyHash != partition.KeyHash {
		s.loud(&out, now, "keyhash:"+b.ID, slog.LevelError,
			"peer refused: it maps keys to partitions with another hash (a Roost from before the change to FNV-1a 32, or after a later one), so the two would disagree on every key's owners; it stays out of the cluster — restart the whole cluster on one version",
			"name", b.Name, "id", b.ID, "addr", b.Addr, "build", b.Build, "its_key_hash", b.KeyHash, "our_key_hash", partition.KeyHash)
		return out
	}
	if b.Placement != s.placement {
		s.loud(&out, now, "placement:"+b.ID, slog.LevelError,
			"peer refused: it places partitions by another --placement-tag, so every node would compute another table; it stays out of the cluster (both sides refuse)",
			"name", b.Name, "id", b.ID, "addr", b.Addr, "its_placement_tag", b.Placement, "our_placement_tag", s.placement)
		return out
	}
	s.loud(&out, now, "partitions:"+b.ID, slog.LevelError,
		"peer refused: it runs another partition count, so it stays out of the cluster (both sides refuse)",
		"name", b.Name, "id", b.ID, "addr", b.Addr, "its_partitions", b.Partitions, "our_partitions", s.partitions)
	return out
}

// onForceLeave marks a suspect or dead member left.
func (s *state) onForceLeave(m forceLeaveRequest) (out output) {
	e, ok := s.members[m.Name]
	switch {
	case !ok:
		out.Err = fmt.Errorf("%w: %q", ErrUnknownMember, m.Name)
	case e.Self:
		out.Err = ErrSelf
	case e.Status == Alive:
		out.Err = fmt.Errorf("%w: %q, last beat %v ago", ErrAlive, m.Name, m.Now.Sub(e.LastSeen).Round(time.Millisecond))
	case e.Status == Left:
		// already out
	default:
		out.log(slog.LevelWarn, "member forced out", "name", e.Name, "id", e.ID, "was", e.Status)
		e.forced = true
		s.setStatus(e, Left, m.Now)
		out.Dirty = true
	}
	return out
}

// onSetTags replaces our tags and beats at once.
func (s *state) onSetTags(m setTagsRequest) (out output) {
	me := s.members[s.self]
	if me.Status == Left {
		out.Err = ErrLeft
		return out
	}
	if !maps.Equal(me.Tags, m.Tags) {
		me.Tags = m.Tags
		s.version++
		out.log(slog.LevelInfo, "tags changed", "tags", m.Tags)
	}
	out.Beat = s.beat(m.Now)
	out.Dirty = true
	return out
}

// onSetRole changes our role and beats at once: a server that turns proxy
// (a graceful leave draining its data) leaves the partition tables while it
// stays a live member.
func (s *state) onSetRole(m setRoleRequest) (out output) {
	me := s.members[s.self]
	if me.Status == Left {
		out.Err = ErrLeft
		return out
	}
	if me.Role != m.Role {
		me.Role = m.Role
		s.version++
		out.log(slog.LevelInfo, "role changed", "role", m.Role)
	}
	out.Beat = s.beat(m.Now)
	out.Dirty = true
	return out
}

// onLeave marks us left and beats at once; later beats say Leaving too.
func (s *state) onLeave(m leaveRequest) (out output) {
	me := s.members[s.self]
	if me.Status != Left {
		out.log(slog.LevelInfo, "leaving the cluster", "name", me.Name, "id", me.ID)
		s.setStatus(me, Left, m.Now)
	}
	out.Beat = s.beat(m.Now)
	out.Dirty = true
	return out
}

// stall returns how long this node did not run before now, a tick late:
// the time since the loop last stepped a message beyond stallGrace tick
// periods (the ticker fires every tickEvery, so a longer gap means the loop
// was not scheduled: CPU starvation, a GC pause, a suspended process). Beats
// that arrived meanwhile wait unread in our queue and do not count as heard
// until now, so the stall is ours, not the peers' silence.
func (s *state) stall(now time.Time) time.Duration {
	if s.lastRun.IsZero() {
		return 0
	}
	return max(now.Sub(s.lastRun)-stallGrace*s.tickEvery, 0)
}

// ran records that the loop ran at now.
func (s *state) ran(now time.Time) {
	if now.After(s.lastRun) {
		s.lastRun = now
	}
}

// beat makes our next heartbeat.
func (s *state) beat(now time.Time) *Heartbeat {
	me := s.members[s.self]
	s.seq++
	me.LastSeen = now
	if me.Since.IsZero() {
		me.Since = now
	}
	return &Heartbeat{
		ID:          me.ID,
		Name:        me.Name,
		Incarnation: me.Incarnation,
		Role:        me.Role,
		Tags:        me.Tags, // never changed in place: SetTags replaces the map
		Addr:        me.Addr,
		HTTP:        me.HTTP,
		Partitions:  me.Partitions,
		Placement:   me.Placement,
		KeyHash:     partition.KeyHash,
		Datacenter:  me.Datacenter,
		Build:       me.Build,
		Routes:      me.Routes,
		Leaving:     me.Status == Left,
		Seq:         s.seq,
		IntervalMS:  s.interval.Milliseconds(),
	}
}

// greet brings our next beat forward to the next tick, so that a member
// that just appeared (it missed our earlier beats) learns of us within a
// tick, not an interval. Members appearing together get one beat.
func (s *state) greet(now time.Time) {
	if s.nextBeat.After(now) {
		s.nextBeat = now
	}
}

// setStatus changes a member's status, a change of the view.
func (s *state) setStatus(e *entry, st Status, now time.Time) {
	e.Status, e.Since = st, now
	s.version++
}

// loud adds a log line unless the same key was logged less than logEvery ago.
func (s *state) loud(out *output, now time.Time, key string, level slog.Level, msg string, args ...any) {
	if last, ok := s.lastLog[key]; ok && now.Sub(last) < logEvery {
		return
	}
	s.lastLog[key] = now
	out.log(level, msg, args...)
}

// view returns the current view; it shares nothing with the state.
func (s *state) view() View {
	ms := make([]Member, 0, len(s.members))
	for _, e := range s.members {
		ms = append(ms, e.clone())
	}
	slices.SortFunc(ms, func(a, b Member) int { return cmp.Compare(a.Name, b.Name) })
	return View{Version: s.version, Members: ms}
}

// refusedPeers returns the refused peers sorted by name, then ID.
func (s *state) refusedPeers() []Member {
	ms := make([]Member, 0, len(s.refused))
	for _, r := range s.refused {
		ms = append(ms, r.clone())
	}
	slices.SortFunc(ms, func(a, b Member) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return ms
}

// newEntry makes an alive member from its beat.
func newEntry(b *Heartbeat, fallback time.Duration, now time.Time) *entry {
	return &entry{
		Member: Member{
			ID:          b.ID,
			Name:        b.Name,
			Incarnation: b.Incarnation,
			Role:        b.Role,
			Tags:        b.Tags,
			Addr:        b.Addr,
			HTTP:        b.HTTP,
			Partitions:  b.Partitions,
			Placement:   b.Placement,
			Datacenter:  b.Datacenter,
			Build:       b.Build,
			Routes:      b.Routes,
			Status:      Alive,
			LastSeen:    now,
			Since:       now,
			Extra:       b.Extra,
		},
		interval: b.interval(fallback),
		seq:      b.Seq,
	}
}
