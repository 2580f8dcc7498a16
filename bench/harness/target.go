package harness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
)

// Target is one system under measurement. Get and Set are called by every
// worker at once and must be safe for concurrent use; Close is called once,
// after the last of them.
type Target interface {
	Get(key string) error               // reads key; an error when it fails, is refused or comes back empty
	Set(key string, value []byte) error // writes key; an error when it fails or is refused
	Close()
}

// Path opens a Target that reaches Roost one way: the NATS text API, the Go
// client, or the consul KV HTTP API. Open is called once per run.
type Path interface {
	Name() string
	Open(ep Endpoint, cfg Config) (Target, error)
}

// Endpoint is where a Path finds the deployment.
type Endpoint struct {
	URL  string // NATS URL of a node, or of the NATS the nodes use
	HTTP string // host:port of a node's HTTP API; "" when off (only an HTTP path needs it)
}

// pathFor returns the Path named by Config.Path.
func pathFor(name string) (Path, error) {
	switch name {
	case PathText:
		return textPath{}, nil
	case PathClient:
		return clientPath{}, nil
	case PathHTTP:
		return httpPath{}, nil
	}
	return nil, fmt.Errorf("%w: --path %q", ErrConfig, name)
}

// Errors a target reports for a reply that is not what was asked for.
var (
	errEmptyReply = errors.New("harness: empty reply to a get")
)

// Header names of the NATS text API and of NATS micro errors (docs/PROTOCOL.md).
const (
	hdrAck       = "Roost-Ack"
	hdrErrorCode = "Nats-Service-Error-Code"
	hdrError     = "Nats-Service-Error"
)

// dial opens the connection one target's workers share.
func dial(url, token, name string, timeout time.Duration) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name("roost bench "+name),
		nats.Token(token),
		nats.Timeout(timeout),
		nats.NoReconnect(),
	)
	if err != nil {
		return nil, fmt.Errorf("harness: connect %s to %s: %w", name, url, err)
	}
	return nc, nil
}

// serviceErr returns the NATS micro error a reply carries, or nil.
func serviceErr(subject string, m *nats.Msg) error {
	if code := m.Header.Get(hdrErrorCode); code != "" {
		return fmt.Errorf("harness: %s: %s %s", subject, code, m.Header.Get(hdrError))
	}
	return nil
}

// textPath is Roost's NATS text API through plain nats.go requests, as any
// NATS client would use it: roost.get.<key>, roost.set.<key>.
type textPath struct{}

func (textPath) Name() string { return PathText }

func (textPath) Open(ep Endpoint, cfg Config) (Target, error) {
	nc, err := dial(ep.URL, cfg.Token, "roost-text", cfg.Timeout)
	if err != nil {
		return nil, err
	}
	t := &textTarget{nc: nc, subj: wire.NewSubjects(cfg.Prefix), timeout: cfg.Timeout}
	if cfg.Ack != wire.AckPrimary { // primary is the node's default: no header, as a plain client sends
		t.hdr = nats.Header{hdrAck: {cfg.Ack}}
	}
	return t, nil
}

type textTarget struct {
	nc      *nats.Conn
	subj    wire.Subjects
	hdr     nats.Header // headers of every set; only read once built
	timeout time.Duration
}

func (t *textTarget) Get(key string) error {
	subject := t.subj.Get(key)
	m, err := t.nc.Request(subject, nil, t.timeout)
	if err != nil {
		return err
	}
	if err := serviceErr(subject, m); err != nil {
		return err
	}
	if len(m.Data) == 0 {
		return errEmptyReply
	}
	return nil
}

func (t *textTarget) Set(key string, value []byte) error {
	msg := &nats.Msg{Subject: t.subj.Set(key), Data: value, Header: t.hdr}
	m, err := t.nc.RequestMsg(msg, t.timeout)
	if err != nil {
		return err
	}
	return serviceErr(msg.Subject, m)
}

func (t *textTarget) Close() { t.nc.Close() }

// clientPath is Roost's Go client (client/) on the binary msgpack API, with
// or without its automatic batching of concurrent calls.
type clientPath struct{}

func (clientPath) Name() string { return PathClient }

func (clientPath) Open(ep Endpoint, cfg Config) (Target, error) {
	nc, err := dial(ep.URL, cfg.Token, "roost-client", cfg.Timeout)
	if err != nil {
		return nil, err
	}
	c, err := client.New(nc,
		client.WithPrefix(cfg.Prefix),
		client.WithTimeout(cfg.Timeout),
		client.WithBatching(cfg.Batching),
		client.WithAck(cfg.Ack),
		client.WithNearCache(cfg.NearCache, cfg.NearTTL), // 0 bytes: off
	)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &clientTarget{nc: nc, c: c}, nil
}

type clientTarget struct {
	nc *nats.Conn
	c  *client.Client
}

func (t *clientTarget) Get(key string) error {
	it, err := t.c.Get(context.Background(), key)
	if err != nil {
		return err
	}
	if len(it.Value) == 0 {
		return errEmptyReply
	}
	return nil
}

func (t *clientTarget) Set(key string, value []byte) error {
	_, err := t.c.Set(context.Background(), key, value)
	return err
}

func (t *clientTarget) Close() {
	t.c.Close()
	t.nc.Close()
}
