package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors"
	"github.com/roostkv/roost/bus/wire"
)

const (
	inboxSize = 16  // API requests waiting for the loop
	beatsSize = 256 // heartbeats waiting for the loop; beyond it NATS drops them (slow consumer)

	leaveFlushTimeout = 2 * time.Second // Leave's flush when its context has no deadline
)

// Membership is the membership actor of one node. Its methods may be called
// by any number of goroutines.
type Membership struct {
	cfg     Config // defaults filled in
	log     *slog.Logger
	subject string

	inbox  *actors.Inbox[request]
	runner actors.Runner
	st     *state // owned by the loop (and by Start before the loop runs)

	snap  atomic.Pointer[snapshot] // what View and Refused read
	extra atomic.Pointer[[]byte]   // SetExtra's payload, added to every beat by the loop
	subs  subscribers              // Subscribe's channels

	lifeMu  sync.Mutex // serialises Start and Stop
	started bool
	stopped bool

	// Owned by the loop.
	beats    chan *nats.Msg
	sub      *nats.Subscription
	tick     <-chan time.Time
	stopTick func()
	lastWarn time.Time // rate limit of decode and publish warnings
}

// snapshot is what the loop publishes after every change.
type snapshot struct {
	view    View
	refused []Member
}

// New makes the membership of the process cfg.Self; Start runs it.
func New(cfg Config) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m := &Membership{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "membership", "self", cfg.Self.Name),
		subject: cfg.Subjects.Heartbeat(),
		inbox:   actors.NewInbox[request](inboxSize),
		st:      newState(cfg),
		beats:   make(chan *nats.Msg, beatsSize),
	}
	m.snap.Store(&snapshot{view: m.st.view()})
	return m, nil
}

// Start subscribes to heartbeats, publishes our first beat at once and
// starts the loop. It does not block. It fails with ErrNotRunning after Stop.
func (m *Membership) Start() error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	switch {
	case m.stopped:
		return ErrNotRunning
	case m.started:
		return actors.ErrRunning
	}
	sub, err := m.cfg.Conn.ChanSubscribe(m.subject, m.beats)
	if err != nil {
		return err
	}
	// Listen before returning: a peer that starts right after must be
	// heard from its first beat, not its second.
	if err := m.cfg.Conn.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	m.sub = sub
	m.tick, m.stopTick = m.cfg.Ticker, func() {}
	if m.tick == nil {
		t := time.NewTicker(tickPeriod(m.cfg.Interval))
		m.tick, m.stopTick = t.C, t.Stop
	}
	m.handle(tickMsg{Now: m.cfg.Clock()}) // the first beat, before the loop runs
	if err := m.runner.Start(context.Background(), m.run); err != nil {
		m.stopTick()
		_ = sub.Unsubscribe()
		return err
	}
	m.started = true
	return nil
}

// Stop ends the loop and returns once it has ended: no more beats, peers
// will find us dead after their DeadAfter. It does not announce a leave (call
// Leave first for that). Subscribers' channels are closed. Stop is
// idempotent; View and Refused keep answering the last state.
func (m *Membership) Stop() {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	m.stopped = true
	_ = m.runner.Stop()
	m.inbox.Close() // also when the loop never started
	m.subs.close()
}

// run is the actor loop: it alone touches the state.
func (m *Membership) run(ctx context.Context) error {
	defer m.inbox.Close()
	defer m.subs.close()
	defer m.stopTick()
	defer func() { _ = m.sub.Unsubscribe() }()
	for {
		select {
		case <-ctx.Done(): // Stop
			return nil
		case <-m.tick: // time to beat if due, and to judge silences
			m.handle(tickMsg{Now: m.cfg.Clock(), Queued: m.queuedBeats()})
		case msg := <-m.beats: // a heartbeat from the bus
			m.onBusMessage(msg)
		case r := <-m.inbox.Receive(): // an API request
			r = r.at(m.cfg.Clock())
			r.reply() <- m.handle(r)
		}
	}
}

// queuedBeats takes the heartbeats waiting in the queue, decoded, for the
// tick to apply before it judges silences.
func (m *Membership) queuedBeats() []Heartbeat {
	var bs []Heartbeat
	for n := len(m.beats); n > 0; n-- { // only the loop receives: n are there
		msg := <-m.beats
		var b Heartbeat
		if err := wire.Unmarshal(msg.Data, &b); err != nil {
			m.warn("undecodable heartbeat ignored", "err", err, "bytes", len(msg.Data))
			continue
		}
		bs = append(bs, b)
	}
	return bs
}

// onBusMessage decodes a heartbeat and steps on it.
func (m *Membership) onBusMessage(msg *nats.Msg) {
	var b Heartbeat
	if err := wire.Unmarshal(msg.Data, &b); err != nil {
		m.warn("undecodable heartbeat ignored", "err", err, "bytes", len(msg.Data))
		return
	}
	m.handle(beatMsg{Beat: b, Now: m.cfg.Clock()})
}

// handle steps the state machine and does what it says: log, publish the
// beat, publish the snapshot, deliver the view. It returns the request's
// answer, or the publish error.
func (m *Membership) handle(msg message) error {
	before := m.st.version
	out := m.st.step(msg)
	for _, n := range out.Notes {
		m.log.Log(context.Background(), n.Level, n.Msg, n.Args...)
	}
	var pubErr error
	if out.Beat != nil {
		pubErr = m.publish(out.Beat)
	}
	if out.Dirty || m.st.version != before {
		m.subs.publish(&m.snap, &snapshot{view: m.st.view(), refused: m.st.refusedPeers()}, m.st.version != before)
	}
	if out.Err != nil {
		return out.Err
	}
	return pubErr
}

// publish sends a beat with the current Extra.
func (m *Membership) publish(b *Heartbeat) error {
	if p := m.extra.Load(); p != nil {
		b.Extra = *p
	}
	data, err := wire.Marshal(b)
	if err == nil {
		err = m.cfg.Conn.Publish(m.subject, data)
	}
	if err != nil {
		m.warn("cannot publish heartbeat", "err", err)
	}
	return err
}

// warn logs at warn level at most once per logEvery.
func (m *Membership) warn(msg string, args ...any) {
	now := m.cfg.Clock()
	if !m.lastWarn.IsZero() && now.Sub(m.lastWarn) < logEvery {
		return
	}
	m.lastWarn = now
	m.log.Warn(msg, args...)
}

// ask sends a request to the loop and waits for its answer.
func (m *Membership) ask(ctx context.Context, build func(chan<- error) request) error {
	if !m.runner.Running() {
		return ErrNotRunning
	}
	err, askErr := actors.Ask(ctx, m.inbox, build)
	if errors.Is(askErr, actors.ErrStopped) {
		return ErrNotRunning
	}
	if askErr != nil {
		return askErr
	}
	return err
}

// Leave announces at once that we leave: a beat with Leaving set, flushed
// to the server, so peers mark us left without waiting for silence. Later
// beats (until Stop) say Leaving too, and SetTags fails with ErrLeft. Call it
// before Stop; it fails with ErrNotRunning when the loop does not run. The
// flush waits until ctx's deadline, or leaveFlushTimeout if it has none.
func (m *Membership) Leave(ctx context.Context) error {
	err := m.ask(ctx, func(r chan<- error) request { return leaveRequest{Reply: r} })
	if err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok { // NATS flushes only with a deadline
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, leaveFlushTimeout)
		defer cancel()
	}
	return m.cfg.Conn.FlushWithContext(ctx)
}

// View returns the latest view: an atomic snapshot, cheap. Treat it as
// read-only.
func (m *Membership) View() View { return m.snap.Load().view }

// Refused returns the peers refused because they run another partition
// count (Status Refused, LastSeen their last beat), sorted by name. A peer
// stays listed until it has been silent for DeadAfter of its beat periods.
func (m *Membership) Refused() []Member { return m.snap.Load().refused }

// Subscribe returns a channel that holds the current view at once and then
// receives the view after each change (each new Version). It has room for one
// view: a reader that falls behind finds the newest view, never a stale one,
// and never blocks the loop. The channel is closed by cancel and by Stop;
// cancel is idempotent.
func (m *Membership) Subscribe() (<-chan View, func()) {
	return m.subs.subscribe(&m.snap)
}

// ForceLeave marks a suspect or dead member left at once, so it stops
// counting as live. It fails with ErrAlive for an alive member,
// ErrUnknownMember for a name not in the view and ErrSelf for this node; a
// member already left is fine. If the member is in fact still beating, its
// next beat brings it back.
func (m *Membership) ForceLeave(ctx context.Context, name string) error {
	return m.ask(ctx, func(r chan<- error) request { return forceLeaveRequest{Name: name, Reply: r} })
}

// SetTags replaces this node's tags and publishes a beat at once, so peers
// see them within a round trip. It fails with ErrLeft after Leave.
func (m *Membership) SetTags(ctx context.Context, tags map[string]string) error {
	tags = maps.Clone(tags)
	return m.ask(ctx, func(r chan<- error) request { return setTagsRequest{Tags: tags, Reply: r} })
}

// SetRole changes this node's role (RoleServer or RoleProxy) and publishes
// a beat at once. It fails with ErrLeft after Leave.
func (m *Membership) SetRole(ctx context.Context, role string) error {
	if role != RoleServer && role != RoleProxy {
		return fmt.Errorf("membership: role %q: want %q or %q", role, RoleServer, RoleProxy)
	}
	return m.ask(ctx, func(r chan<- error) request { return setRoleRequest{Role: role, Reply: r} })
}

// SetExtra sets the opaque payload of the following beats (the next regular
// beat carries it; none is sent at once). b is copied. Peers read it as
// Member.Extra; a change of Extra alone is not a change of the view.
func (m *Membership) SetExtra(b []byte) {
	c := bytes.Clone(b)
	m.extra.Store(&c)
}

// Ready returns nil once the loop runs and answers, or ctx's error.
func (m *Membership) Ready(ctx context.Context) error {
	return m.ask(ctx, func(r chan<- error) request { return pingRequest{Reply: r} })
}
