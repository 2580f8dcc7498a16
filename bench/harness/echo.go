package harness

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// The echo baseline's subjects. They belong to the harness alone, not to
// Roost's API, and carry a unique token per run so that two runs against one
// deployment never answer each other.
const (
	echoSubjectFmt = "roost-bench.%s.echo" // then .get or .set, then .<key> when keyed
)

// echoResponder answers requests the way a cache that did no work at all
// would: a get with a value of the configured size, a set with an empty
// reply. It is the ceiling of any NATS request-reply cache on that bus.
type echoResponder struct {
	base string // echoSubjectFmt with this run's token
}

// startEcho subscribes on nc; closing nc stops the responder.
func startEcho(nc *nats.Conn, layout string, valueSize int) (*echoResponder, error) {
	e := &echoResponder{base: fmt.Sprintf(echoSubjectFmt, nuid.Next())}
	if err := ServeEcho(nc, e.base, layout, valueSize); err != nil {
		return nil, err
	}
	return e, nil
}

// ServeEcho answers, on nc, the echo target's requests under the subject
// base: <base>.get (with EchoKeyed, <base>.get.<key>) with valueSize bytes,
// allocated once, and <base>.set with an empty reply. Closing nc stops it.
// Another process can serve the echo this way for Config.EchoServer.
func ServeEcho(nc *nats.Conn, base, layout string, valueSize int) error {
	value := make([]byte, valueSize)
	getSubj, setSubj := base+".get", base+".set"
	if layout == EchoKeyed {
		getSubj, setSubj = getSubj+".>", setSubj+".>"
	}
	if _, err := nc.Subscribe(getSubj, func(m *nats.Msg) { _ = m.Respond(value) }); err != nil {
		return fmt.Errorf("harness: echo: %w", err)
	}
	if _, err := nc.Subscribe(setSubj, func(m *nats.Msg) { _ = m.Respond(nil) }); err != nil {
		return fmt.Errorf("harness: echo: %w", err)
	}
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("harness: echo: %w", err)
	}
	return nil
}

// echoTarget requests the echo responder as the text path requests Roost:
// plain nats.go requests on one shared connection.
type echoTarget struct {
	nc               *nats.Conn
	getSubj, setSubj string // full subjects (fixed) or bases to which ".<key>" is added (keyed)
	keyed            bool
	timeout          time.Duration
}

func newEchoTarget(nc *nats.Conn, e *echoResponder, layout string, timeout time.Duration) *echoTarget {
	return &echoTarget{nc: nc, getSubj: e.base + ".get", setSubj: e.base + ".set", keyed: layout == EchoKeyed, timeout: timeout}
}

func (t *echoTarget) subject(base, key string) string {
	if t.keyed {
		return base + "." + key
	}
	return base
}

func (t *echoTarget) Get(key string) error {
	m, err := t.nc.Request(t.subject(t.getSubj, key), nil, t.timeout)
	if err != nil {
		return err
	}
	if len(m.Data) == 0 {
		return errEmptyReply
	}
	return nil
}

func (t *echoTarget) Set(key string, value []byte) error {
	_, err := t.nc.Request(t.subject(t.setSubj, key), value, t.timeout)
	return err
}

func (t *echoTarget) Close() { t.nc.Close() }
