package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/roostkv/roost/bus/wire"
)

// ErrConfig is the error of an invalid Config.
var ErrConfig = errors.New("node: invalid config")

// Roles of a node.
const (
	RoleServer = "server" // holds partitions
	RoleProxy  = "proxy"  // joins, routes, holds no data
)

// HTTPOff disables the HTTP API when given as Config.HTTP.
const HTTPOff = "off"

// Config is everything a node needs to start. Every field is also a flag of
// `roost serve` (named in brackets); zero values mean the default shown.
type Config struct {
	Name          string            // [--name] node name, unique in the cluster; "" = host name
	Listen        string            // [--listen] NATS client address of the embedded server; default 127.0.0.1:4222, port -1 = random
	ClusterListen string            // [--cluster-listen] NATS route address; "" = no clustering
	Join          []string          // [--join] route URLs of nodes to cluster with
	NATSURL       string            // [--nats] external NATS to use instead of embedding one; "" = embed
	HTTP          string            // [--http] HTTP API address, or "off"; default 127.0.0.1:7721, port 0 = random
	Replicas      int               // [--replicas] owners per partition; default 2, capped at the live servers
	Partitions    int               // [--partitions] partition count P, fixed for a cluster's life; default 271
	PlacementTag  string            // [--placement-tag] tag whose values (zones) each partition's owners are spread over, e.g. "zone"; "" = none; every node of a cluster must have the same (docs/cluster.md)
	MaxMemory     int64             // [--max-memory] bytes for keys, values and per-entry overhead; default 1 GiB, 0 = unlimited
	MaxValue      int64             // [--max-value] largest value in bytes; default 1 MiB
	MaxKey        int               // [--max-key] longest key in bytes; default 1024
	Token         string            // [--token] shared secret NATS and HTTP clients must present; "" = no auth
	Tags          map[string]string // [--tags] free-form labels shown in membership
	Role          string            // [--role] RoleServer (default) or RoleProxy
	DataDir       string            // [--data-dir] where a warm-restart snapshot is kept; "" = none
	Prefix        string            // [--prefix] subject prefix of the API; default "roost"
	Datacenter    string            // [--datacenter] datacenter name reported where consul reports one (member tag dc, /v1/agent/self); "" = "dc1"
	SweepInterval time.Duration     // how often expired entries are swept; default 1s
	TextRoute     string            // [--text-route] TextRoutePartition (default, ""): in a cluster the embedded server maps each text request to its key's partition, and NATS routes it to the primary (zero-hop; a request in flight to a primary that is killed is lost with it); TextRouteLocal: it maps nothing, and the node a client is connected to answers, forwarding to the primary. Either way the node holds the routed subjects of the partitions it leads (route.go)

	AckTimeout  time.Duration // [--ack-timeout] how long an ack=all write waits for every live owner; default 5s
	AntiEntropy time.Duration // [--anti-entropy] period of the replicas' digest comparisons; default 5s, negative = off

	// Loaders (load.go, docs/PROTOCOL.md "Loaders").
	LoadTimeout time.Duration // [--load-timeout] how long a key's primary waits for a loader's answer before the waiting gets fail with 503; default 2s
	LoadTTL     time.Duration // [--load-ttl] TTL of a loaded value whose loader sent no Roost-TTL; default 10m, 0 = no expiry
	NegativeTTL time.Duration // [--negative-ttl] how long a loader's 404 is remembered (answered 404 without asking again); default 30s, 0 = off
	// FeedExpiry [--feed-expiry] announces on the change feed the keys
	// that expire (by the primary of their partition) and those this node
	// evicts, so that roost watch and blocking queries see them; default off.
	FeedExpiry bool

	// ClusterAdvertise [--cluster-advertise] is the route address host:port
	// peers are told to dial for this node, when they cannot reach
	// --cluster-listen (NAT, or a test's fault-injecting proxy); "" = the
	// --cluster-listen address.
	ClusterAdvertise string

	HeartbeatInterval time.Duration // [--heartbeat-interval] how often the node tells its peers it lives; default 500ms
	SuspectAfter      int           // [--suspect-after] missed heartbeats before a peer is suspect; default 3
	DeadAfter         int           // [--dead-after] missed heartbeats before a peer is dead; default 6
	Logger            *slog.Logger  // nil = slog.Default()

	TLSCert string // [--tls-cert] PEM certificate file: NATS clients and HTTP are served over TLS; "" = plain
	TLSKey  string // [--tls-key] PEM private key file of --tls-cert
	TLSCA   string // [--tls-ca] PEM CA file: clients must present a certificate it signed (mutual TLS, NATS and HTTP), and routes use TLS; "" = no client certificates

	// Sources names where the settings that rules may change at run time
	// (runtime_config.go: max_memory, log_level, tags) got their values
	// from: "flag", "env ROOST_MAX_MEMORY", "file roost.yaml", "default".
	// GET /v1/roost/config shows it. nil or a missing setting = "config".
	Sources map[string]string
	// LogLevel is the level of Logger's handler, which a pushed log_level
	// sets; nil = the level cannot change at run time.
	LogLevel *slog.LevelVar
	// OnMaxMemory is called with the new limit after a pushed max_memory
	// changed it (`roost serve` moves the Go soft memory limit along);
	// nil = nothing more to do.
	OnMaxMemory func(maxMemory int64)

	// OnLeave is called, from a goroutine of its own, after PUT
	// /v1/agent/leave has announced the leave: `roost serve` stops the
	// process. nil = the node stops itself (Stop).
	OnLeave func()
}

// Defaults.
const (
	DefaultListen     = "127.0.0.1:4222"
	DefaultHTTP       = "127.0.0.1:7721"
	DefaultReplicas   = 2
	DefaultPartitions = 271
	DefaultMaxMemory  = 1 << 30 // 1 GiB
	DefaultMaxValue   = 1 << 20 // 1 MiB, the NATS default payload
	DefaultMaxKey     = 1024
	maxHeaderBytes    = 64 << 10 // room above MaxValue for headers and batch framing

	DefaultLoadTimeout = 2 * time.Second  // a loader's answer
	DefaultLoadTTL     = 10 * time.Minute // a loaded value without Roost-TTL
	DefaultNegativeTTL = 30 * time.Second // a loader's 404
)

// DefaultConfig returns the configuration of `roost serve` with no flags.
func DefaultConfig() Config {
	name, _ := os.Hostname()
	return Config{
		Name:          name,
		Listen:        DefaultListen,
		HTTP:          DefaultHTTP,
		Replicas:      DefaultReplicas,
		Partitions:    DefaultPartitions,
		MaxMemory:     DefaultMaxMemory,
		MaxValue:      DefaultMaxValue,
		MaxKey:        DefaultMaxKey,
		Role:          RoleServer,
		Prefix:        wire.DefaultPrefix,
		SweepInterval: time.Second,

		HeartbeatInterval: 500 * time.Millisecond,
		SuspectAfter:      3,
		DeadAfter:         6,

		AckTimeout:  5 * time.Second,
		AntiEntropy: 5 * time.Second,

		LoadTimeout: DefaultLoadTimeout,
		LoadTTL:     DefaultLoadTTL,
		NegativeTTL: DefaultNegativeTTL,
	}
}

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9_.-]*$`)
	prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

	placementTagRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// Validate rejects nonsense with ErrConfig, naming the flag at fault.
func (c Config) Validate() error {
	bad := func(flag, format string, args ...any) error {
		return fmt.Errorf("%w: --%s: %s", ErrConfig, flag, fmt.Sprintf(format, args...))
	}
	if c.Name == "" || !nameRE.MatchString(c.Name) {
		return bad("name", "%q: use letters, digits, '-', '_' and '.'", c.Name)
	}
	if c.NATSURL == "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return bad("listen", "%q is not host:port", c.Listen)
		}
	} else if !strings.Contains(c.NATSURL, "://") {
		return bad("nats", "%q is not a URL like nats://host:4222", c.NATSURL)
	}
	if c.HTTP != HTTPOff {
		if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
			return bad("http", "%q is not host:port or %q", c.HTTP, HTTPOff)
		}
	}
	if c.TextRoute != "" && c.TextRoute != TextRoutePartition && c.TextRoute != TextRouteLocal {
		return bad("text-route", "%q: use %q or %q", c.TextRoute, TextRoutePartition, TextRouteLocal)
	}
	if c.Replicas < 1 {
		return bad("replicas", "%d: need at least 1", c.Replicas)
	}
	if c.Partitions < 1 || c.Partitions > 65536 {
		return bad("partitions", "%d: need 1..65536", c.Partitions)
	}
	if c.PlacementTag != "" && !placementTagRE.MatchString(c.PlacementTag) {
		return bad("placement-tag", "%q: a tag name of letters, digits, '-', '_' and '.'", c.PlacementTag)
	}
	if c.MaxMemory < 0 {
		return bad("max-memory", "%d is negative", c.MaxMemory)
	}
	if c.MaxValue < 1 || c.MaxValue > 64<<20 {
		return bad("max-value", "%d: need 1 byte..64 MiB", c.MaxValue)
	}
	if c.MaxKey < 1 || c.MaxKey > 64<<10 {
		return bad("max-key", "%d: need 1..65536 bytes", c.MaxKey)
	}
	if !prefixRE.MatchString(c.Prefix) {
		return bad("prefix", "%q is not a NATS subject without wildcards", c.Prefix)
	}
	if c.Datacenter != "" && !datacenterRE.MatchString(c.Datacenter) {
		return bad("datacenter", "%q: use lower-case letters, digits, '-' and '_', as consul does", c.Datacenter)
	}
	if c.SweepInterval <= 0 {
		return bad("sweep-interval", "%s must be positive", c.SweepInterval)
	}
	if c.Role != RoleServer && c.Role != RoleProxy {
		return bad("role", "%q: want %q or %q", c.Role, RoleServer, RoleProxy)
	}
	if c.NATSURL != "" && (c.ClusterListen != "" || len(c.Join) > 0) {
		return bad("nats", "an external NATS does the clustering: drop --cluster-listen and --join")
	}
	if c.ClusterListen != "" {
		if _, _, err := net.SplitHostPort(c.ClusterListen); err != nil {
			return bad("cluster-listen", "%q is not host:port", c.ClusterListen)
		}
	}
	for _, j := range c.Join {
		if strings.TrimSpace(j) == "" {
			return bad("join", "empty address in %q", strings.Join(c.Join, ","))
		}
	}
	if c.HeartbeatInterval <= 0 {
		return bad("heartbeat-interval", "%s must be positive", c.HeartbeatInterval)
	}
	if c.SuspectAfter < 1 || c.DeadAfter <= c.SuspectAfter {
		return bad("dead-after", "need 1 <= --suspect-after (%d) < --dead-after (%d)", c.SuspectAfter, c.DeadAfter)
	}
	if c.LoadTimeout <= 0 || c.LoadTimeout > forwardTimeout {
		return bad("load-timeout", "%s: need more than 0 and at most %s (a forwarded get waits no longer)", c.LoadTimeout, forwardTimeout)
	}
	if c.LoadTTL < 0 || c.LoadTTL > MaxTTL {
		return bad("load-ttl", "%s: need 0 (no expiry) up to %s", c.LoadTTL, MaxTTL)
	}
	if c.NegativeTTL < 0 {
		return bad("negative-ttl", "%s is negative (0 = off)", c.NegativeTTL)
	}
	if err := c.validateTLS(); err != nil {
		return err
	}
	return nil
}

// validateTLS checks that the TLS files go together and load.
func (c Config) validateTLS() error {
	bad := func(flag, format string, args ...any) error {
		return fmt.Errorf("%w: --%s: %s", ErrConfig, flag, fmt.Sprintf(format, args...))
	}
	switch {
	case c.TLSCert == "" && c.TLSKey == "" && c.TLSCA == "":
		return nil
	case c.TLSCert == "" && c.TLSKey == "" && c.NATSURL != "":
		// Only a CA: it verifies the external NATS; HTTP stays plain.
		if _, err := loadCA(c.TLSCA); err != nil {
			return bad("tls-ca", "%v", err)
		}
		return nil
	case c.TLSCert == "" || c.TLSKey == "":
		return bad("tls-cert", "--tls-cert and --tls-key go together (and --tls-ca needs them, except with --nats)")
	}
	if _, err := loadTLS(c.TLSCert, c.TLSKey, c.TLSCA); err != nil {
		flag := "tls-cert"
		if errors.Is(err, errBadCA) {
			flag = "tls-ca"
		}
		return bad(flag, "%v", err)
	}
	return nil
}

// maxPayload is the bus payload limit that fits MaxValue plus headers.
func (c Config) maxPayload() int32 {
	return int32(c.MaxValue + maxHeaderBytes)
}

// SoftMemoryLimit is the Go runtime memory limit (debug.SetMemoryLimit) that
// `roost serve` sets for a node with the given --max-memory, unless GOMEMLIMIT
// is set: the accounted data, an eighth more, and 16 MiB for the bus and the
// runtime. It makes the collector work harder as the heap nears it, instead
// of letting the heap grow to twice the live data as GOGC=100 alone would.
// The promise is a heap under 1.25 × --max-memory + 32 MiB; the limit sits
// below it because a collector starved of CPU overshoots its target while
// writers keep allocating. 0 = no limit.
func SoftMemoryLimit(maxMemory int64) int64 {
	if maxMemory <= 0 {
		return 0
	}
	return maxMemory + maxMemory/8 + 16<<20
}

// HeapLimit is the soft memory limit for the Go heap of a node whose store
// keeps offHeap bytes mapped outside it (actors/store: keys, values and
// tables, which the runtime's limit does not see): SoftMemoryLimit less
// them, so that the heap and the store together stay within it — but never
// under the replication log's bound (an eighth of maxMemory, whose values
// live on the heap) plus 32 MiB for the bus and the runtime, so the
// collector is not driven to run back to back. 0 = no limit.
func HeapLimit(maxMemory, offHeap int64) int64 {
	if maxMemory <= 0 {
		return 0
	}
	return max(SoftMemoryLimit(maxMemory)-offHeap, maxMemory/8+32<<20)
}
