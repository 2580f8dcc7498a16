package membership

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
)

// ErrConfig is wrapped by every error of Config.Validate.
var ErrConfig = errors.New("membership: invalid config")

// Defaults.
const (
	DefaultInterval     = 500 * time.Millisecond // one beat per node every half second
	DefaultSuspectAfter = 3                      // beats: suspect after 1.5 s of silence
	DefaultDeadAfter    = 6                      // beats: dead after 3 s of silence, the kill -9 detection time
	DefaultForgetAfter  = 10 * time.Minute       // long enough for `roost members` to show what went away

	// checksPerInterval is how many times per Interval the default ticker
	// fires: statuses are checked on every tick, so a silent member is
	// marked at most Interval/10 after its threshold.
	checksPerInterval = 10
	// stallGrace is how many tick periods late a tick may come before the
	// delay counts as a stall of this node: a tick one period late is
	// scheduling jitter (the ticker drops a tick the loop was slow to take).
	stallGrace = 2
	// maxStallCredit bounds what this node's stalls may excuse: a member's
	// silence is judged net of our stalls, but a member silent for
	// maxStallCredit × its DeadAfter periods is dead however much we stalled
	// (hashicorp/memberlist's awareness scales its timeouts by at most 8 too).
	maxStallCredit = 8
	// logEvery is the least time between two repeats of a loud log line
	// about one peer (refused partition count, name conflict, stale process).
	logEvery = 10 * time.Second
)

// Config sets up a Membership. Conn, Subjects and Self (ID, Name, Role,
// Partitions) are required; every other zero value means its default.
type Config struct {
	// Self is this process: ID unique per process start, Name stable across
	// restarts, Incarnation rising with each restart of Name (the node passes
	// its start time in Unix ms), Role "server" or "proxy", Partitions the
	// partition count P it was started with. Status, LastSeen and Self are
	// ignored.
	Self Member
	// Interval is the heartbeat period. It is also announced in every beat,
	// and peers measure our silence in units of it. 0 = DefaultInterval.
	Interval time.Duration
	// SuspectAfter is how many beat periods of silence make a member suspect
	// (the period is the one the member announces). 0 = DefaultSuspectAfter.
	SuspectAfter int
	// DeadAfter is how many beat periods of silence make a member dead; more
	// than SuspectAfter. 0 = DefaultDeadAfter.
	DeadAfter int
	// ForgetAfter is how long a dead or left member stays in the view after
	// it became dead or left; then it is dropped (its name and incarnation
	// are remembered for another ForgetAfter, so that beats of a stale or
	// left process do not bring it back). 0 = DefaultForgetAfter.
	ForgetAfter time.Duration
	// Conn is the NATS connection beats are published and received on.
	// Required. Membership does not close it.
	Conn *nats.Conn
	// Subjects names the heartbeat subject (Subjects.Heartbeat). Required:
	// build it with wire.NewSubjects.
	Subjects wire.Subjects
	// Logger receives joins, departures and refusals. nil = slog.Default().
	Logger *slog.Logger
	// Clock tells the time. The loop stamps every message with it (beats on
	// arrival, ticks, requests), so LastSeen is local receive time, never
	// the sender's clock. nil = time.Now.
	Clock func() time.Time
	// Ticker drives the loop: on every tick it publishes a beat if one is
	// due (every Interval) and checks statuses. nil = a real ticker every
	// Interval/10. Tests pass their own channel (and Clock) to drive
	// everything.
	Ticker <-chan time.Time
}

// tickPeriod is the default ticker's period for a beat interval.
func tickPeriod(interval time.Duration) time.Duration {
	return max(interval/checksPerInterval, time.Millisecond)
}

// DefaultConfig is a Config with every default filled in; the caller adds
// Self, Conn and Subjects.
func DefaultConfig() Config {
	return Config{
		Interval:     DefaultInterval,
		SuspectAfter: DefaultSuspectAfter,
		DeadAfter:    DefaultDeadAfter,
		ForgetAfter:  DefaultForgetAfter,
	}
}

// Validate rejects nonsense, naming the offending field.
func (c Config) Validate() error {
	if err := c.validateLogic(); err != nil {
		return err
	}
	switch {
	case c.Conn == nil:
		return fmt.Errorf("%w: Conn is required", ErrConfig)
	case c.Subjects.Prefix() == "":
		return fmt.Errorf("%w: Subjects is required (wire.NewSubjects)", ErrConfig)
	}
	return nil
}

// validateLogic checks what the state machine needs, without the I/O fields.
func (c Config) validateLogic() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrConfig}, args...)...)
	}
	d := c.withDefaults()
	switch {
	case c.Self.ID == "":
		return bad("Self.ID is required")
	case c.Self.Name == "":
		return bad("Self.Name is required")
	case c.Self.Role != RoleServer && c.Self.Role != RoleProxy:
		return bad("Self.Role must be %q or %q, got %q", RoleServer, RoleProxy, c.Self.Role)
	case c.Self.Partitions < 1:
		return bad("Self.Partitions must be >= 1, got %d", c.Self.Partitions)
	case c.Interval < 0:
		return bad("Interval must be >= 0 (0 = %v), got %v", DefaultInterval, c.Interval)
	case c.Interval > 0 && c.Interval < time.Millisecond:
		return bad("Interval must be at least 1ms, got %v", c.Interval)
	case c.SuspectAfter < 0:
		return bad("SuspectAfter must be >= 0 (0 = %d), got %d", DefaultSuspectAfter, c.SuspectAfter)
	case c.DeadAfter < 0:
		return bad("DeadAfter must be >= 0 (0 = %d), got %d", DefaultDeadAfter, c.DeadAfter)
	case d.DeadAfter <= d.SuspectAfter:
		return bad("DeadAfter (%d) must be more than SuspectAfter (%d)", d.DeadAfter, d.SuspectAfter)
	case c.ForgetAfter < 0:
		return bad("ForgetAfter must be >= 0 (0 = %v), got %v", DefaultForgetAfter, c.ForgetAfter)
	}
	return nil
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.SuspectAfter == 0 {
		c.SuspectAfter = DefaultSuspectAfter
	}
	if c.DeadAfter == 0 {
		c.DeadAfter = DefaultDeadAfter
	}
	if c.ForgetAfter == 0 {
		c.ForgetAfter = DefaultForgetAfter
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}
