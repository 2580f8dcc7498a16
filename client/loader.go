package client

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/bus/wire"
)

// Loaders (docs/PROTOCOL.md, "Loaders"): when a get misses at its key's
// primary and a loader listens on "<prefix>.load.<key>", the primary asks
// it for the value, once however many gets wait, stores it and answers
// them all. Any NATS responder is a loader; ServeLoader is the Go helper.

// ErrLoadNotFound is what a LoaderFunc returns (or wraps) for a key that
// does not exist: Roost answers 404 and remembers it for --negative-ttl.
var ErrLoadNotFound = errors.New("client: loader: no such key")

// LoadOptions are what a loader tells Roost about a value it loaded.
type LoadOptions struct {
	TTL      time.Duration // time to live of the stored value; 0 = the node's --load-ttl
	NoExpiry bool          // store it without a TTL (TTL is then ignored)
	Flags    uint64        // opaque flags stored with the value
	Refresh  time.Duration // reload in the background when read after this age (refresh-ahead); 0 = never
}

// LoaderFunc loads the value of key, which has no value in Roost. It
// returns ErrLoadNotFound for a key that does not exist; any other error
// is answered to the waiting gets as a 503 with its text. It may be called
// concurrently for different keys.
type LoaderFunc func(ctx context.Context, key string) ([]byte, LoadOptions, error)

// DefaultLoaderService is the micro service name ServeLoader registers
// under, so that `roost loaders` and `nats micro ls` find it.
const DefaultLoaderService = "roost-loader"

// LoaderOption configures ServeLoader.
type LoaderOption func(*loaderConfig)

type loaderConfig struct {
	prefix  string // subject prefix of the Roost deployment; "" = wire.DefaultPrefix
	service string // micro service name; "" = DefaultLoaderService
	queue   string // queue group; "" = the service name
	version string // micro service version; "" = "1.0.0"
}

// WithLoaderPrefix sets the subject prefix of the Roost deployment (a
// node's --prefix).
func WithLoaderPrefix(prefix string) LoaderOption {
	return func(c *loaderConfig) { c.prefix = prefix }
}

// WithLoaderService sets the micro service name (DefaultLoaderService by
// default) and so the queue group: loaders of one name share the loads.
func WithLoaderService(name string) LoaderOption {
	return func(c *loaderConfig) { c.service = name }
}

// Loader is a running ServeLoader.
type Loader struct {
	svc      micro.Service
	stopOnce sync.Once
	wg       sync.WaitGroup // loads being answered
	cancel   context.CancelFunc
	done     chan struct{}
}

// ServeLoader answers Roost's loads of the keys matching pattern (a key, or
// one with NATS wildcards: "users.>", "*.avatar"; "" = every key) with fn,
// in a queue group so that several processes share them. It registers as
// a NATS micro service (DefaultLoaderService), found by `roost loaders`.
// It returns once the subscription is in place; the loader stops when ctx
// ends or Stop is called.
func ServeLoader(ctx context.Context, nc *nats.Conn, pattern string, fn LoaderFunc, opts ...LoaderOption) (*Loader, error) {
	cfg := loaderConfig{prefix: wire.DefaultPrefix, service: DefaultLoaderService, version: "1.0.0"}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.queue == "" {
		cfg.queue = cfg.service
	}
	subj := wire.NewSubjects(cfg.prefix)
	ctx, cancel := context.WithCancel(ctx)
	l := &Loader{cancel: cancel, done: make(chan struct{})}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        cfg.service,
		Version:     cfg.version,
		Description: "Roost loader for " + subj.LoadPattern(pattern),
		QueueGroup:  cfg.queue,
		Metadata:    map[string]string{"roost.prefix": cfg.prefix, "roost.pattern": pattern},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("client: loader: register micro service: %w", err)
	}
	l.svc = svc
	handler := func(req micro.Request) {
		key, ok := subj.LoadKey(req.Subject())
		if !ok {
			_ = req.Error(strconv.Itoa(wire.CodeBadRequest), "not a load subject: "+req.Subject(), nil)
			return
		}
		// Answer from a goroutine of its own, so that slow loads of other
		// keys do not queue behind this one; the reply goes straight to the
		// requester (micro's request must not be answered after the
		// handler returned).
		reply := req.Reply()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			_ = nc.PublishMsg(loadReply(ctx, reply, key, fn))
		}()
	}
	if err := svc.AddEndpoint("load", micro.HandlerFunc(handler), micro.WithEndpointSubject(subj.LoadPattern(pattern))); err != nil {
		_ = svc.Stop()
		cancel()
		return nil, fmt.Errorf("client: loader: subscribe %s: %w", subj.LoadPattern(pattern), err)
	}
	if err := nc.Flush(); err != nil {
		l.Stop()
		return nil, fmt.Errorf("client: loader: %w", err)
	}
	go func() {
		<-ctx.Done()
		l.Stop()
	}()
	return l, nil
}

// loadReply runs fn for key and builds the reply to send to reply.
func loadReply(ctx context.Context, reply, key string, fn LoaderFunc) *nats.Msg {
	msg := nats.NewMsg(reply)
	value, o, err := fn(ctx, key)
	switch {
	case errors.Is(err, ErrLoadNotFound):
		msg.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(wire.CodeNotFound))
		msg.Header.Set(micro.ErrorHeader, "not found")
		return msg
	case err != nil:
		msg.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(wire.CodeInternal))
		msg.Header.Set(micro.ErrorHeader, strings.ReplaceAll(err.Error(), "\n", " "))
		return msg
	}
	msg.Data = value
	switch {
	case o.NoExpiry:
		msg.Header.Set("Roost-TTL", "0")
	case o.TTL > 0:
		msg.Header.Set("Roost-TTL", o.TTL.String())
	}
	if o.Flags != 0 {
		msg.Header.Set("Roost-Flags", strconv.FormatUint(o.Flags, 10))
	}
	if o.Refresh > 0 {
		msg.Header.Set("Roost-Refresh", o.Refresh.String())
	}
	return msg
}

// Stop unsubscribes and waits for the loads being answered. It is
// idempotent.
func (l *Loader) Stop() {
	l.stopOnce.Do(func() {
		_ = l.svc.Stop()
		l.cancel()
		l.wg.Wait()
		close(l.done)
	})
}

// Done is closed once the loader has stopped.
func (l *Loader) Done() <-chan struct{} { return l.done }
