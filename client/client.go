package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
)

// Client talks to a Roost deployment over the binary NATS API. It is safe for
// concurrent use; concurrent single-key calls share batch messages (see
// WithBatching).
type Client struct {
	nc      *nats.Conn
	ownConn bool // Close closes nc (Connect), or leaves it to its owner (New)
	cfg     config
	subj    wire.Subjects
	generic string     // subj.Batch(): the batch subject any node serves
	b       *batcher   // nil when batching is off
	r       *router    // nil when routing is off: everything goes to the generic batch subject
	near    *nearCache // nil unless WithNearCache (near.go)

	life      context.Context    // cancelled by Close
	endLife   context.CancelFunc // cancels life
	closeOnce sync.Once
}

// Item is one key as read from Roost.
//
// Value is the caller's: it may read it, change its bytes and append to
// it, and no other Item sees that. It may share memory with the reply it
// came in (a batch reply of at most 64 KiB is not copied value by value),
// though never with another Item's Value within its length or capacity
// (an append copies); so keeping a Value keeps that reply from the garbage
// collector too. To keep a few small values of many for long, keep copies
// (bytes.Clone).
type Item struct {
	Key     string
	Value   []byte
	Version uint64    // the key's version; 0 = not found (MGet)
	Flags   uint64    // opaque flags stored with the value
	Expires time.Time // when the entry expires; zero = never
}

// Found reports whether the key existed: MGet returns an Item with only Key
// set, and Found false, for each key it did not find.
func (it Item) Found() bool { return it.Version != 0 }

// Connect dials NATS at url (a node's --listen address, or any server of the
// NATS deployment the nodes use; "" = nats.DefaultURL) and returns a client
// that owns the connection. A wrong or missing token fails with an error
// matching ErrUnauthorized. With routing on (WithRouting), Connect and New
// ask for the partition table before they return, waiting at most 2 s (or
// WithTimeout if shorter); without an answer the client starts with none.
func Connect(url string, opts ...Option) (*Client, error) {
	cfg := buildConfig(opts)
	if url == "" {
		url = nats.DefaultURL
	}
	nopts := []nats.Option{nats.Name(cfg.name)}
	if cfg.token != "" {
		nopts = append(nopts, nats.Token(cfg.token))
	}
	nopts = append(nopts, cfg.natsOpts...)
	nc, err := nats.Connect(url, nopts...)
	switch {
	case errors.Is(err, nats.ErrAuthorization):
		return nil, fmt.Errorf("%w: connect to %s: wrong or missing token: %w", ErrUnauthorized, url, err)
	case errors.Is(err, nats.ErrNoServers):
		return nil, fmt.Errorf("client: connect to %s: %w (is a roost node listening there?)", url, err)
	case err != nil:
		return nil, fmt.Errorf("client: connect to %s: %w", url, err)
	}
	c := newClient(nc, cfg)
	c.ownConn = true
	return c, nil
}

// New returns a client using nc, which stays the caller's: Close does not
// close it. Connection options (WithToken, WithName, WithNATSOptions) are
// ignored.
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, errors.New("client: New with a nil connection")
	}
	if nc.IsClosed() {
		return nil, fmt.Errorf("%w: New with a closed connection", ErrClosed)
	}
	return newClient(nc, buildConfig(opts)), nil
}

func buildConfig(opts []Option) config {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	cfg.normalize()
	return cfg
}

func newClient(nc *nats.Conn, cfg config) *Client {
	subj := wire.NewSubjects(cfg.prefix)
	c := &Client{nc: nc, cfg: cfg, subj: subj, generic: subj.Batch()}
	c.life, c.endLife = context.WithCancel(context.Background())
	if !cfg.noRouting && cfg.tableRefresh > 0 {
		c.r = newRouter(c.subj, cfg.tableRefresh, cfg.timeout, c.fetchTable)
		_ = c.r.refresh(c.life) // without a table, every node still answers
		tick := time.NewTicker(cfg.tableRefresh)
		go func() {
			defer tick.Stop()
			c.r.run(c.life, tick.C)
		}()
	}
	if !cfg.noBatching {
		c.b = newBatcher(c)
	}
	if cfg.nearBytes > 0 && cfg.nearTTL > 0 {
		c.near = newNearCache(cfg.nearBytes, cfg.nearTTL)
		c.startNear()
	}
	return c
}

// Close stops the batcher, fails calls still waiting for it with ErrClosed,
// and closes the connection if Connect opened it. It returns once every
// goroutine the client started has ended, and is idempotent.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		c.endLife()
		if c.b != nil {
			c.b.shutdown()
		}
		if c.r != nil {
			<-c.r.done
		}
		if c.near != nil {
			<-c.near.done
		}
		if c.ownConn {
			c.nc.Close()
		}
	})
}

// Conn returns the NATS connection the client uses.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Get reads key. A missing or expired key fails with ErrNotFound. With
// AndTouch it also resets the key's expiry (counters.go).
func (c *Client) Get(ctx context.Context, key string, opts ...GetOption) (Item, error) {
	if err := checkKey(key); err != nil {
		return Item{}, err
	}
	if len(opts) > 0 {
		return c.getWith(ctx, key, opts) // counters.go
	}
	if c.near != nil {
		return c.nearGet(ctx, key)
	}
	res, err := c.do(ctx, wire.Request{Op: wire.OpGet, Key: key}, "")
	if err != nil {
		return Item{}, err
	}
	if err := resultErr(key, &res); err != nil {
		return Item{}, err
	}
	return itemOf(key, &res), nil
}

// Set writes key and returns its new version. With IfVersion it is a
// compare-and-swap that fails with ErrCASMismatch.
func (c *Client) Set(ctx context.Context, key string, value []byte, opts ...WriteOption) (uint64, error) {
	req, ack, err := c.setRequest(key, value, opts)
	if err != nil {
		return 0, err
	}
	return c.write(ctx, req, ack)
}

// CompareAndSwap writes key only if its current version is version (0 = only
// if absent), and returns the new version; otherwise it fails with
// ErrCASMismatch. It is Set with IfVersion(version).
func (c *Client) CompareAndSwap(ctx context.Context, key string, value []byte, version uint64, opts ...WriteOption) (uint64, error) {
	return c.Set(ctx, key, value, append(opts[:len(opts):len(opts)], IfVersion(version))...)
}

// Delete removes key and returns the version the node reports for the
// delete. Deleting an absent key succeeds. With IfVersion it fails with
// ErrCASMismatch unless the key's version matches.
func (c *Client) Delete(ctx context.Context, key string, opts ...WriteOption) (uint64, error) {
	req, ack, err := c.delRequest(key, opts)
	if err != nil {
		return 0, err
	}
	return c.write(ctx, req, ack)
}

func (c *Client) write(ctx context.Context, req wire.Request, ack string) (uint64, error) {
	if c.near != nil {
		return c.nearWrite(ctx, req, ack)
	}
	res, err := c.do(ctx, req, ack)
	if err != nil {
		return 0, err
	}
	if err := resultErr(req.Key, &res); err != nil {
		return 0, err
	}
	return res.Version, nil
}

// do runs one operation: through the batcher, or as a request of its own.
func (c *Client) do(ctx context.Context, req wire.Request, ack string) (wire.Result, error) {
	if c.b != nil {
		res, err := c.b.do(ctx, req, ack)
		if err != nil || !replyFull(&req, &res) {
			return res, err
		}
		// Other large values filled the shared reply: ask again alone.
	}
	return c.single(ctx, req, ack)
}

// replyFull reports whether a get failed only because the values before it
// filled the batch reply; alone, it fits (docs/PROTOCOL.md).
func replyFull(req *wire.Request, res *wire.Result) bool {
	return req.Op == wire.OpGet && res.Code == wire.CodeTooLarge
}

// single runs one operation as a request of its own.
func (c *Client) single(ctx context.Context, req wire.Request, ack string) (wire.Result, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	res, err := c.batch(ctx, c.destOf(req.Key), []wire.Request{req}, ack)
	if err != nil {
		return wire.Result{}, err
	}
	return res[0], nil
}

// setRequest builds the request of a Set and the ack mode of its batch.
func (c *Client) setRequest(key string, value []byte, opts []WriteOption) (wire.Request, string, error) {
	if err := checkKey(key); err != nil {
		return wire.Request{}, "", err
	}
	o := c.writeOpts(opts)
	if o.ttl < 0 {
		return wire.Request{}, "", &Error{Code: wire.CodeBadRequest, Message: fmt.Sprintf("negative TTL %s for key %q", o.ttl, key)}
	}
	req := wire.Request{
		Op:    wire.OpSet,
		Key:   key,
		Value: value,
		TTL:   ttlMillis(o.ttl),
		Flags: o.flags,
		CAS:   o.cas,
	}
	return req, o.ack, nil
}

// delRequest builds the request of a Delete and the ack mode of its batch.
func (c *Client) delRequest(key string, opts []WriteOption) (wire.Request, string, error) {
	if err := checkKey(key); err != nil {
		return wire.Request{}, "", err
	}
	o := c.writeOpts(opts)
	return wire.Request{Op: wire.OpDel, Key: key, CAS: o.cas}, o.ack, nil
}

func (c *Client) writeOpts(opts []WriteOption) writeOpts {
	o := writeOpts{ack: c.cfg.ack}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// batch sends ops as one BatchRequest to dest (a node's batch subject, or
// the generic one) and returns their results, one per op. A node subject
// nobody serves any more is routed around and the request retried once on
// the generic subject: no node got it, so nothing ran twice. A request in
// flight to a node that turns out to be gone (see router.inFlightTo) is not
// waited for: reads are sent again on the generic subject, since running
// them twice changes nothing; writes fail with a 503 (ErrNotReady), their
// outcome unknown, as when a node answers 503 after its own bounds.
func (c *Client) batch(ctx context.Context, dest string, ops []wire.Request, ack string) ([]wire.Result, error) {
	return c.batchInto(ctx, dest, ops, ack, nil)
}

// batchInto is batch decoding the results into into's space when it has
// room for them (the batcher reuses one slice per sender). The request is
// encoded in a pooled buffer, which NATS copies out when it sends.
func (c *Client) batchInto(ctx context.Context, dest string, ops []wire.Request, ack string, into []wire.Result) ([]wire.Result, error) {
	buf := requestBuffers.Get().(*[]byte)
	data := wire.BatchRequest{Ops: ops, Ack: ack}.AppendMsgpack((*buf)[:0])
	defer func() {
		if cap(data) <= maxPooledRequest {
			*buf = data[:0]
		}
		requestBuffers.Put(buf)
	}()
	if c.r == nil || dest == c.generic {
		m, err := c.request(ctx, dest, data)
		return decodeBatch(m, err, dest, len(ops), into)
	}
	m, err := c.requestNode(ctx, dest, data)
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders): // the node is gone
		c.r.nodeGone(dest)
		dest = c.generic
		m, err = c.request(ctx, dest, data)
	case errors.Is(err, errNodeGone) && readsOnly(ops):
		dest = c.generic
		m, err = c.request(ctx, dest, data)
	case errors.Is(err, errNodeGone):
		err = &Error{Code: wire.CodeUnavailable, Message: "the node " + dest + " went away with the request in flight: it may or may not have been applied"}
	case errors.Is(err, ErrTimeout): // maybe gone; the deadline is spent, and the node may have run the ops
		c.r.stale()
	}
	return decodeBatch(m, err, dest, len(ops), into)
}

// requestBuffers holds the buffers batch requests are encoded in; one
// over maxPooledRequest bytes is left to the collector.
var requestBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledRequest = 256 << 10

// decodeBatch returns the results of a batch request of n ops from its
// reply m on dest, or the request's error err. The results are decoded
// into into's space when it has room.
func decodeBatch(m *nats.Msg, err error, dest string, n int, into []wire.Result) ([]wire.Result, error) {
	if err != nil {
		return nil, err
	}
	clear(into[:cap(into)]) // the decoder leaves absent fields as they are
	resp := wire.BatchResponse{Results: into[:0]}
	unmarshal := resp.UnmarshalSharedValues // values point into m.Data (see Item)
	if len(m.Data) > maxSharedReply {
		unmarshal = resp.UnmarshalMsgpack
	}
	if err := unmarshal(m.Data); err != nil {
		return nil, fmt.Errorf("%w: reply on %s: %w", ErrProtocol, dest, err)
	}
	if len(resp.Results) != n {
		return nil, fmt.Errorf("%w: %d results for %d operations on %s", ErrProtocol, len(resp.Results), n, dest)
	}
	return resp.Results, nil
}

// maxSharedReply is the largest batch reply whose values are handed out as
// slices of the reply rather than copies: a value kept keeps its whole
// reply from the collector, at most this many bytes. Larger replies (large
// values, mostly) have each value copied out.
const maxSharedReply = 64 << 10

// requestNode is request on a node's own subject, ended early with
// errNodeGone once the router knows the node is gone.
func (c *Client) requestNode(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	alive := c.r.inFlightTo(subject)
	rctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(alive, func() { cancel(context.Cause(alive)) })
	defer func() { stop(); cancel(nil) }()
	m, err := c.request(rctx, subject, data)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), errNodeGone) {
		return nil, errNodeGone
	}
	return m, err
}

// readsOnly reports whether ops are all gets, which may run twice.
func readsOnly(ops []wire.Request) bool {
	for i := range ops {
		if ops[i].Op != wire.OpGet {
			return false
		}
	}
	return true
}

// destOf returns the subject that key's operations go to.
func (c *Client) destOf(key string) string {
	if c.r == nil {
		return c.generic
	}
	return c.r.destOf(key)
}

// fetchTable asks any node for the partition table.
func (c *Client) fetchTable(ctx context.Context) ([]byte, error) {
	m, err := c.request(ctx, c.subj.Table(), nil)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}

// request sends data on subject and returns the reply, or the whole-request
// error it carries.
func (c *Client) request(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	if c.life.Err() != nil {
		return nil, ErrClosed
	}
	m, err := c.nc.RequestWithContext(ctx, subject, data)
	if err != nil {
		if c.life.Err() != nil {
			return nil, ErrClosed
		}
		return nil, requestErr(ctx, subject, err)
	}
	if err := serviceErr(m); err != nil {
		return nil, err
	}
	return m, nil
}

// callCtx bounds a call that does not go through the batcher: by the
// client's timeout when ctx has no deadline, and by Close.
func (c *Client) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if _, ok := ctx.Deadline(); ok {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, c.cfg.timeout)
	}
	stop := context.AfterFunc(c.life, cancel)
	return ctx, func() { stop(); cancel() }
}

// maxBatchBytes is the most bytes of operations one message may carry.
func (c *Client) maxBatchBytes() int {
	const headroom = 4 << 10 // msgpack framing of the batch, reply subject
	mp := int(c.nc.MaxPayload())
	if mp <= 0 {
		mp = 1 << 20 // NATS default, until the server said otherwise
	}
	return max(mp-headroom, 1)
}

// opSize estimates the bytes req takes in a BatchRequest.
func opSize(req *wire.Request) int {
	const overhead = 48 // field names, op, ttl, flags, cas, framing
	return len(req.Key) + len(req.Value) + overhead
}

func checkKey(key string) error {
	if key == "" {
		return &Error{Code: wire.CodeBadRequest, Message: "empty key"}
	}
	return nil
}

// ttlMillis is d in whole milliseconds, rounded up so that a positive d
// never becomes 0 (no expiry).
func ttlMillis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

func itemOf(key string, r *wire.Result) Item {
	return Item{Key: key, Value: r.Value, Version: r.Version, Flags: r.Flags, Expires: unixMilli(r.Expires)}
}

func unixMilli(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
