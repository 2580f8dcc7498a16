package client

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
)

// Defaults of a Client; each has an Option to change it.
const (
	DefaultTimeout     = 5 * time.Second // per request, when the context has no deadline
	DefaultMaxBatch    = 128             // operations per batch message
	DefaultMaxInFlight = 4               // batch messages awaiting their reply at once, per node (see WithMaxInFlight)
)

// config is what the Options of Connect and New set. Zero values mean the
// default named on each field.
type config struct {
	token       string        // NATS token for Connect; "" = none
	name        string        // NATS connection name for Connect; "" = "roost client"
	natsOpts    []nats.Option // extra nats.go options for Connect (TLS, reconnects...)
	prefix      string        // subject prefix; "" = wire.DefaultPrefix
	timeout     time.Duration // per request when ctx has no deadline; 0 = DefaultTimeout
	noBatching  bool          // true = one message per single-key call
	maxBatch    int           // ops per batch message; 0 = DefaultMaxBatch
	maxInFlight int           // concurrent batch messages; 0 = DefaultMaxInFlight
	ack         string        // ack mode of writes without an Ack option; "" = the node's default (primary)

	noRouting    bool          // true = every batch goes to the generic batch subject
	tableRefresh time.Duration // how often the partition table is fetched again; 0 or less = no routing

	nearBytes int64         // near cache's limit in bytes; 0 = no near cache (near.go)
	nearTTL   time.Duration // the oldest a value served from the near cache may be; 0 = no near cache
}

func defaultConfig() config {
	return config{
		name:        "roost client",
		prefix:      wire.DefaultPrefix,
		timeout:     DefaultTimeout,
		maxBatch:    DefaultMaxBatch,
		maxInFlight: DefaultMaxInFlight,

		tableRefresh: DefaultTableRefresh,
	}
}

// Option configures a Client.
type Option func(*config)

// WithToken sets the token Connect presents to NATS (a node's --token).
// New ignores it: the connection it is given is already authenticated.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithName sets the NATS connection name Connect announces (shown by
// `nats server report connections`). New ignores it.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithNATSOptions adds nats.go options to the connection Connect dials, for
// TLS, credentials, reconnect policy and the like. New ignores them.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(c *config) { c.natsOpts = append(c.natsOpts, opts...) }
}

// WithPrefix sets the subject prefix of the Roost deployment (a node's
// --prefix); "" means wire.DefaultPrefix.
func WithPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithTimeout sets how long a call waits for its reply when its context has
// no deadline; 0 or less means DefaultTimeout. A context deadline always wins.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithBatching turns automatic batching of concurrent single-key calls on
// (the default) or off. Off, every Get, Set, Delete and CompareAndSwap is a
// request of its own.
func WithBatching(on bool) Option { return func(c *config) { c.noBatching = !on } }

// WithMaxBatch sets the most operations one batch message carries, for the
// batcher and for MGet, MSet and MDelete alike; 0 or less means
// DefaultMaxBatch. It must not exceed the node's batch limit.
func WithMaxBatch(n int) Option { return func(c *config) { c.maxBatch = n } }

// WithMaxInFlight sets how many batch messages may await their reply at
// once for each node. Calls for a node wait while one of its messages is in
// flight and go together in its next one; a second message leaves only when
// a full batch waits, or when the node has answered nothing for a couple of
// milliseconds (so that one slow message does not hold up the calls behind
// it). Nodes never wait for each other. MGet sends at most this many
// messages at a time to each node. 0 or less means DefaultMaxInFlight.
func WithMaxInFlight(n int) Option { return func(c *config) { c.maxInFlight = n } }

// WithRouting turns routing on (the default) or off. On, the client learns
// the partition table from the cluster and sends each operation straight to
// its partition's primary, one message per primary; off, every message goes
// to the generic batch subject and the node that takes it forwards what it
// does not lead. Either way every operation is answered correctly; routing
// saves a hop.
func WithRouting(on bool) Option { return func(c *config) { c.noRouting = !on } }

// WithTableRefresh sets how often the client fetches the partition table
// again (DefaultTableRefresh unless set); it also does so at once when a
// node it routes to has gone. 0 or less turns routing off, as
// WithRouting(false) does.
func WithTableRefresh(d time.Duration) Option { return func(c *config) { c.tableRefresh = d } }

// WithAck sets the ack mode of writes that do not name one with Ack:
// wire.AckPrimary or wire.AckAll. "" leaves it to the node (primary).
func WithAck(mode string) Option { return func(c *config) { c.ack = mode } }

// normalize replaces nonsense with defaults.
func (c *config) normalize() {
	if c.prefix == "" {
		c.prefix = wire.DefaultPrefix
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBatch <= 0 {
		c.maxBatch = DefaultMaxBatch
	}
	if c.maxInFlight <= 0 {
		c.maxInFlight = DefaultMaxInFlight
	}
}

// writeOpts are what WriteOptions set on one write.
type writeOpts struct {
	ttl   time.Duration // 0 = no expiry
	flags uint64        // opaque, stored with the value
	cas   *uint64       // expected version; nil = unconditional
	ack   string        // ack mode; starts as the client's default
}

// WriteOption modifies one Set, Delete, CompareAndSwap or SetItem.
type WriteOption func(*writeOpts)

// TTL makes the entry expire d after the write. It travels in whole
// milliseconds, rounded up, so any positive d expires; 0 means never, and a
// negative d is refused with ErrBadRequest. Delete ignores it.
func TTL(d time.Duration) WriteOption { return func(o *writeOpts) { o.ttl = d } }

// Flags stores opaque flags with the value (consul's flags). Delete ignores it.
func Flags(f uint64) WriteOption { return func(o *writeOpts) { o.flags = f } }

// IfVersion makes the write conditional: it applies only when the key's
// current version is v, or, for v == 0, only when the key is absent.
// Otherwise the write fails with ErrCASMismatch.
func IfVersion(v uint64) WriteOption {
	return func(o *writeOpts) { o.cas = &v }
}

// Ack sets when the node answers this write: wire.AckPrimary or wire.AckAll.
func Ack(mode string) WriteOption {
	return func(o *writeOpts) { o.ack = mode }
}

// ScanOption modifies a Scan.
type ScanOption func(*wire.ScanRequest)

// PageSize sets how many entries each scan request asks for; 0 leaves it to
// the node, which also caps it.
func PageSize(n int) ScanOption { return func(r *wire.ScanRequest) { r.Limit = n } }

// KeysOnly makes a scan return keys, versions, flags and expiry without values.
func KeysOnly() ScanOption { return func(r *wire.ScanRequest) { r.KeysOnly = true } }

// StartAfter resumes a scan strictly after key.
func StartAfter(key string) ScanOption { return func(r *wire.ScanRequest) { r.After = key } }
