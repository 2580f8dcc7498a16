package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
)

// Errors of this package.
var (
	ErrNotReady = errors.New("bus: embedded NATS server did not become ready")
	ErrConfig   = errors.New("bus: invalid config")
)

// Config says how a node reaches the bus: an embedded server listening on
// Listen, or, when ExternalURL is set, an existing NATS deployment.
type Config struct {
	Name          string        // server name shown by NATS tools; "" = generated
	Listen        string        // client address host:port of the embedded server; port -1 = random
	ExternalURL   string        // nats://... of an external NATS; "" = embed a server
	Token         string        // clients must present it, and routes too; "" = no auth
	ClusterListen string        // route address host:port of the embedded server; "" = no clustering unless Join is set (then a random port on Listen's host)
	Join          []string      // route URLs (nats://host:port or host:port) of servers to cluster with
	MaxPayload    int32         // largest message in bytes; 0 = NATS default (1 MiB)
	ReadyWait     time.Duration // how long to wait for the embedded server; 0 = 10s
	Logger        *slog.Logger  // nil = slog.Default()

	// ClusterAdvertise is the route address host:port other servers are told
	// to dial for this one, when they cannot reach ClusterListen (NAT, or a
	// test's fault-injecting proxy); "" = the address it listens on.
	ClusterAdvertise string

	// LocalSubjects are subjects whose subscriptions the embedded server
	// keeps to itself: it does not tell its routes of them, so a request a
	// client of this server sends on one is served here, never by a peer's
	// subscription (NATS spreads a queue group's messages over the whole
	// cluster). A node's public API is answered by the node its client is
	// connected to: a peer that dies cannot take such a request with it.
	// Ignored with ExternalURL.
	LocalSubjects []string

	// Mappings are subject mappings the embedded server applies to what
	// its clients publish (the text API's routing to partitions,
	// wire.Subjects.TextMappings). Ignored with ExternalURL: there the
	// operator configures them (docs/PROTOCOL.md, "Routing").
	Mappings []wire.Mapping

	// TLS of the embedded server's client port (and of its routes when
	// TLSCA is set), or of the connection to ExternalURL. The in-process
	// connection never uses TLS.
	TLSCert string // PEM certificate file; "" = no TLS
	TLSKey  string // PEM private key file of TLSCert
	TLSCA   string // PEM CA file: clients (and route peers) must present a certificate it signed; "" = no client certificates
}

// Bus is a node's connection to NATS, and the embedded server when there is one.
type Bus struct {
	srv  *server.Server // nil with an external NATS
	conn *nats.Conn     // in-process with an embedded server
	log  *slog.Logger

	routeMu sync.Mutex      // serialises AddRoute
	opts    *server.Options // the embedded server's options as given (random ports unresolved), for reloads; guarded by routeMu
	token   string          // route credentials for AddRoute

	mapMu    sync.Mutex     // guards the two below
	mappings []wire.Mapping // Config.Mappings
	mapped   bool           // the embedded server applies them now

	closeOnce    sync.Once
	gacc         atomic.Pointer[server.Account] // the embedded server's global account, once looked up (interest.go)
	loadPatterns loadPatterns                   // loader subscriptions, listed when observers are about (interest.go)
	queueSubs    queueSubs                      // queue subscriptions by subject, listed (interest.go)
}

// Open starts the embedded server (or dials the external one) and returns the
// bus with its connection ready.
func Open(cfg Config) (*Bus, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &Bus{log: log, token: cfg.Token}
	opts := []nats.Option{
		nats.Name("roost " + cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectBufSize(-1), // fail fast instead of buffering requests while away
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.ExternalURL != "" {
		if cfg.TLSCert != "" || cfg.TLSCA != "" {
			tc, err := clientTLS(cfg)
			if err != nil {
				return nil, err
			}
			opts = append(opts, nats.Secure(tc))
		}
		nc, err := nats.Connect(cfg.ExternalURL, opts...)
		if err != nil {
			return nil, fmt.Errorf("bus: connect to %s: %w", cfg.ExternalURL, err)
		}
		b.conn = nc
		return b, nil
	}

	sopts, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	b.opts = sopts.Clone() // before the server resolves random ports in its own copy
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	// The server reports a failed listen (port in use, say) through Fatalf
	// and then never becomes ready: catch it to fail at once.
	fatal := make(chan string, 1)
	srv.SetLoggerV2(natsLogger{log: log.With("component", "nats"), fatal: func(msg string) {
		select {
		case fatal <- msg:
		default:
		}
	}}, false, false, false)
	srv.Start()
	wait := cfg.ReadyWait
	if wait == 0 {
		wait = 10 * time.Second
	}
	if err := waitReady(srv, wait, fatal); err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("%w on %s: %v", ErrNotReady, cfg.Listen, err)
	}
	b.srv, b.mappings = srv, cfg.Mappings
	if err := b.SetMapped(true); err != nil {
		srv.Shutdown()
		return nil, err
	}
	nc, err := nats.Connect("", append(opts, nats.InProcessServer(srv))...)
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("bus: in-process connection: %w", err)
	}
	b.conn = nc
	return b, nil
}

// waitReady waits until srv accepts clients, reports a fatal error, or wait
// passes.
func waitReady(srv *server.Server, wait time.Duration, fatal <-chan string) error {
	deadline := time.Now().Add(wait)
	for !srv.ReadyForConnections(20 * time.Millisecond) {
		select {
		case msg := <-fatal:
			return errors.New(msg)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready within %s", wait)
		}
	}
	return nil
}

func serverOptions(cfg Config) (*server.Options, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("%w: listen address %q: %v", ErrConfig, cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < -1 || port > 65535 {
		return nil, fmt.Errorf("%w: listen port %q", ErrConfig, portStr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	o := &server.Options{
		ServerName:    cfg.Name,
		Host:          host,
		Port:          port,
		NoSigs:        true, // signals belong to roost, not to the embedded server
		NoLog:         false,
		MaxPayload:    cfg.MaxPayload,
		Authorization: cfg.Token,
	}
	if err := serverTLS(cfg, o); err != nil {
		return nil, err
	}
	if cfg.ClusterListen == "" && len(cfg.Join) == 0 {
		return o, nil
	}
	clusterListen := cfg.ClusterListen
	if clusterListen == "" {
		clusterListen = net.JoinHostPort(host, "-1")
	}
	chost, cportStr, err := net.SplitHostPort(clusterListen)
	if err != nil {
		return nil, fmt.Errorf("%w: cluster listen address %q: %v", ErrConfig, clusterListen, err)
	}
	cport, err := strconv.Atoi(cportStr)
	if err != nil || cport < -1 || cport > 65535 {
		return nil, fmt.Errorf("%w: cluster listen port %q", ErrConfig, cportStr)
	}
	if cport == 0 {
		cport = server.RANDOM_PORT
	}
	if cfg.ClusterAdvertise != "" {
		if _, _, err := net.SplitHostPort(cfg.ClusterAdvertise); err != nil {
			return nil, fmt.Errorf("%w: cluster advertise address %q: %v", ErrConfig, cfg.ClusterAdvertise, err)
		}
	}
	o.Cluster = server.ClusterOpts{Name: ClusterName, Host: chost, Port: cport, Advertise: cfg.ClusterAdvertise}
	if len(cfg.LocalSubjects) > 0 {
		// Import is what this server sends interest for: everything but these.
		o.Cluster.Permissions = &server.RoutePermissions{
			Import: &server.SubjectPermission{Allow: []string{">"}, Deny: slices.Clone(cfg.LocalSubjects)},
		}
	}
	if err := routeTLS(cfg, o); err != nil {
		return nil, err
	}
	if cfg.Token != "" {
		// Routes authenticate with the same secret as clients.
		o.Cluster.Username, o.Cluster.Password = routeUser, cfg.Token
	}
	for _, j := range cfg.Join {
		u, err := routeURL(j, cfg.Token)
		if err != nil {
			return nil, err
		}
		o.Routes = append(o.Routes, u)
	}
	return o, nil
}

// ClusterName is the NATS cluster name every Roost node's embedded server
// uses, so that any two nodes can route to each other.
const ClusterName = "roost"

// routeUser is the route user name when routes authenticate with the token.
const routeUser = "roost"

// routeURL turns a --join entry (nats://host:port, nats-route://host:port
// or host:port) into a route URL carrying the route credentials.
func routeURL(join, token string) (*url.URL, error) {
	if !strings.Contains(join, "://") {
		join = "nats://" + join
	}
	u, err := url.Parse(join)
	if err != nil || u.Host == "" || u.Port() == "" {
		return nil, fmt.Errorf("%w: --join %q is not host:port or nats://host:port", ErrConfig, join)
	}
	if token != "" {
		u.User = url.UserPassword(routeUser, token)
	}
	return u, nil
}

// ClusterAddr is the embedded server's route address (host:port), or "" when
// it does not cluster.
func (b *Bus) ClusterAddr() string {
	if b.srv == nil {
		return ""
	}
	if addr := b.srv.ClusterAddr(); addr != nil {
		return addr.String()
	}
	return ""
}

// Routes is the number of route connections of the embedded server.
func (b *Bus) Routes() int {
	if b.srv == nil {
		return 0
	}
	return b.srv.NumRoutes()
}

// Connect opens another connection to the bus: in-process with an embedded
// server, else to the external URL. The caller closes it.
func (b *Bus) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if b.srv != nil {
		return nats.Connect("", append(opts, nats.InProcessServer(b.srv))...)
	}
	return nats.Connect(b.conn.ConnectedUrl(), opts...)
}

// Conn is the node's own connection: in-process with an embedded server.
func (b *Bus) Conn() *nats.Conn { return b.conn }

// Embedded reports whether this bus runs its own NATS server.
func (b *Bus) Embedded() bool { return b.srv != nil }

// ClientURL is the URL NATS clients use to reach this node's bus.
func (b *Bus) ClientURL() string {
	if b.srv != nil {
		return b.srv.ClientURL()
	}
	return b.conn.ConnectedUrlRedacted()
}

// MaxPayload is the largest message the bus carries, in bytes.
func (b *Bus) MaxPayload() int64 { return b.conn.MaxPayload() }

// Close drains the connection and shuts the embedded server down. It is
// idempotent and returns once the server has stopped.
func (b *Bus) Close() {
	b.closeOnce.Do(func() {
		if b.conn != nil {
			b.conn.Close()
		}
		if b.srv != nil {
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
		}
	})
}

// SetMapped has the embedded server apply Config.Mappings to what its
// clients publish from now on, or stop applying them. Open applies them.
// It does nothing with an external NATS or without mappings.
func (b *Bus) SetMapped(on bool) error {
	b.mapMu.Lock()
	defer b.mapMu.Unlock()
	if b.srv == nil || len(b.mappings) == 0 || b.mapped == on {
		return nil
	}
	acc := b.srv.GlobalAccount()
	for _, m := range b.mappings {
		if !on {
			acc.RemoveMapping(m.Src)
			continue
		}
		if err := acc.AddMapping(m.Src, m.Dest); err != nil {
			return fmt.Errorf("%w: mapping %s -> %s: %v", ErrConfig, m.Src, m.Dest, err)
		}
	}
	b.mapped = on
	return nil
}

// Mapped reports whether the embedded server applies Config.Mappings now.
func (b *Bus) Mapped() bool {
	b.mapMu.Lock()
	defer b.mapMu.Unlock()
	return b.mapped
}

// Interest is the number of subscriptions, this server's and those its
// routes told it of (one per queue group and peer), that a message on
// subject would match right now; -1 with an external NATS, which does not
// tell.
func (b *Bus) Interest(subject string) int {
	if b.srv == nil {
		return -1
	}
	return b.account().Interest(subject)
}
