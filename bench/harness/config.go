package harness

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/node"
)

// ErrConfig is the error of an invalid Config.
var ErrConfig = errors.New("harness: invalid config")

// Workloads: what each worker asks for.
const (
	WorkloadGet   = "get"   // every operation reads a preloaded key
	WorkloadSet   = "set"   // every operation overwrites a preloaded key
	WorkloadMixed = "mixed" // reads with probability GetRatio, writes otherwise
	// WorkloadIncr increments a preloaded counter (preloaded as "0") on
	// every operation (incr.go); the baselines, which have no increment,
	// answer it as a set of the same bytes.
	WorkloadIncr = "incr"
)

// Key distributions: which key each operation picks.
const (
	DistUniform = "uniform" // every key equally likely
	DistZipf    = "zipf"    // key i with probability ∝ 1/(1+i)^ZipfS: key 0 hottest
)

// Paths: how the Roost target reaches the node.
const (
	PathText   = "text"   // the NATS text API: a request on <prefix>.get|set.<key>, raw nats.go
	PathClient = "client" // the Go client (client/), binary msgpack API, batching per Config.Batching
	PathHTTP   = "http"   // the consul KV HTTP API: GET /v1/kv/<key>?raw, PUT /v1/kv/<key>, keep-alive connections
)

// Echo subject layouts of the echo baseline.
const (
	EchoFixed = "fixed" // one subject per operation kind: the NATS ceiling, sublist cache always hits
	EchoKeyed = "keyed" // the key in the subject as Roost's text API does, a wildcard subscription
)

// Config is one run of the harness. Zero values are not defaults: start from
// DefaultConfig, which `roost bench` mirrors flag by flag.
type Config struct {
	Workload    string        // WorkloadGet, WorkloadSet or WorkloadMixed
	GetRatio    float64       // share of gets in WorkloadMixed, 0..1
	Dist        string        // DistUniform or DistZipf
	ZipfS       float64       // zipf exponent s, > 1 (math/rand/v2's Zipf needs s > 1)
	Keys        int           // keyspace, all preloaded before measuring
	ValueSize   int           // bytes per value, written and expected back
	Concurrency int           // workers in flight per target, sharing one connection per target
	Duration    time.Duration // measured time per target, summed over its rounds
	Round       time.Duration // length of one round of one target; targets take turns round by round
	Turn        time.Duration // within a round, targets alternate in turns this long (turnOrder: a, b, c, a, c, b, ...); 0 or ≥ Round = one turn per round
	Warmup      time.Duration // unmeasured run of each target before the first round; 0 = none
	Timeout     time.Duration // per request; a request that takes longer counts as an error
	Ack         string        // wire.AckPrimary or wire.AckAll, for Roost's writes
	Batching    bool          // PathClient: batch concurrent calls (client.WithBatching)
	NearCache   int64         // PathClient: bytes of the client's near cache (client.WithNearCache); 0 = off
	NearTTL     time.Duration // PathClient with NearCache: the near cache's ttl
	Path        string        // PathText, PathClient or PathHTTP
	Compare     bool          // also measure the echo and NATS KV baselines in the same run
	EchoSubject string        // EchoFixed or EchoKeyed: subject layout of the echo baseline

	Server    string // NATS URL of a running deployment; "" = start Nodes nodes here
	Token     string // token of the deployment, and of the nodes and servers the harness starts
	Prefix    string // subject prefix of the deployment; "" = wire.DefaultPrefix
	Nodes     int    // nodes to start when Server is "", clustered, in this process unless Procs; targets talk to the first
	Procs     bool   // start the Nodes nodes as `roost serve` processes of Exec instead of in this process
	Exec      string // path of the roost executable Procs runs; `roost bench` sets its own
	TextRoute string // --text-route of the nodes started here: "" = the node's default (partition: zero-hop routing), "local" = forwarded by the node a client is connected to
	HTTPAddr  string // host:port of the HTTP API of a node of Server, for PathHTTP; "" = none (the nodes started here serve it on a free loopback port)
	KVServer  string // NATS URL with JetStream for the KV baseline; "" = Server if it has JetStream, or an embedded one (see doc.go)

	KeyPrefix string // starts every key the run writes (Roost's and the KV baseline's); "" = "bench-", a random run id and "." (a new one each run)
	Keep      bool   // with Server: leave the keys the run wrote in the deployment; false = delete them when the run ends, fails or is interrupted

	// Preloaded says the deployment at Server already holds every key of
	// the keyspace (KeyPrefix followed by 0..Keys-1) with a value of
	// ValueSize bytes, written by the caller: Roost's preload is skipped,
	// so that a caller can load a keyspace once and measure it many times
	// (bench/scaling). Needs Server and KeyPrefix.
	Preloaded bool

	// EchoServer, with Compare, is the NATS URL of an echo responder that
	// another process serves (ServeEcho) under the subject base EchoBase
	// with values of ValueSize bytes: the echo target requests it there
	// instead of a responder the harness starts on the deployment's bus.
	// A process shaped like a node (embedded server, responder on an
	// in-process connection) is the fair echo of a node process.
	EchoServer string
	EchoBase   string

	// Extra are more targets measured in the same rounds as the others,
	// after them, under their own names: another system at the same point
	// (bench/scaling adds Redis). Their keys are the caller's to load; a
	// Target is handed the run's key names and maps them as it needs.
	Extra []ExtraTarget

	Seed     uint64       // seeds every worker's random source; runs with one seed pick the same keys
	Logger   *slog.Logger // logs of the nodes and servers the harness starts; nil = discard
	Progress func(Event)  // called from one goroutine at each phase; nil = none
}

// DefaultConfig is the run of `roost bench` with no flags: 10 s of gets over
// 100 000 keys of 100 bytes, 32 workers, text API, one in-process node.
func DefaultConfig() Config {
	return Config{
		Workload:    WorkloadGet,
		GetRatio:    0.9,
		Dist:        DistUniform,
		ZipfS:       1.1,
		Keys:        100_000,
		ValueSize:   100,
		Concurrency: 32,
		Duration:    10 * time.Second,
		Round:       2 * time.Second,
		Turn:        250 * time.Millisecond,
		Warmup:      time.Second,
		Timeout:     5 * time.Second,
		Ack:         wire.AckPrimary,
		Batching:    true,
		NearTTL:     time.Minute,
		Path:        PathText,
		EchoSubject: EchoFixed,
		Prefix:      wire.DefaultPrefix,
		Nodes:       1,
		Seed:        1,
	}
}

// ExtraTarget is a target of Config.Extra: Open is called once, in setup,
// and the Target closed when the run ends.
type ExtraTarget struct {
	Name string
	Open func() (Target, error)
}

// maxValueSize is the largest --value-size: a node's default --max-value.
const maxValueSize = 1 << 20

// Validate rejects nonsense with ErrConfig, naming the flag at fault.
func (c Config) Validate() error {
	bad := func(flag, format string, args ...any) error {
		return fmt.Errorf("%w: --%s: %s", ErrConfig, flag, fmt.Sprintf(format, args...))
	}
	switch c.Workload {
	case WorkloadGet, WorkloadSet, WorkloadMixed:
	case WorkloadIncr:
		if c.Path == PathHTTP {
			return bad("workload", "incr runs over --path text or client, not http")
		}
	default:
		return bad("workload", "%q: want get, set, mixed or incr", c.Workload)
	}
	if c.GetRatio < 0 || c.GetRatio > 1 {
		return bad("get-ratio", "%g: want 0..1", c.GetRatio)
	}
	switch c.Dist {
	case DistUniform:
	case DistZipf:
		if !(c.ZipfS > 1) {
			return bad("zipf-s", "%g: must be greater than 1", c.ZipfS)
		}
	default:
		return bad("dist", "%q: want uniform or zipf", c.Dist)
	}
	if c.Keys < 1 {
		return bad("keys", "%d: need at least 1", c.Keys)
	}
	if c.ValueSize < 1 || c.ValueSize > maxValueSize {
		return bad("value-size", "%d: need 1..%d bytes", c.ValueSize, maxValueSize)
	}
	if c.Concurrency < 1 {
		return bad("concurrency", "%d: need at least 1", c.Concurrency)
	}
	if c.Duration <= 0 {
		return bad("duration", "%s must be positive", c.Duration)
	}
	if c.Round <= 0 {
		return bad("round", "%s must be positive", c.Round)
	}
	if c.Turn < 0 {
		return bad("turn", "%s is negative", c.Turn)
	}
	if c.Warmup < 0 {
		return bad("warmup", "%s is negative", c.Warmup)
	}
	if c.Timeout <= 0 {
		return bad("timeout", "%s must be positive", c.Timeout)
	}
	switch c.Ack {
	case wire.AckPrimary, wire.AckAll:
	default:
		return bad("ack", "%q: want primary or all", c.Ack)
	}
	switch {
	case c.NearCache < 0:
		return bad("near-cache", "%d: want a size, or 0 for none", c.NearCache)
	case c.NearCache > 0 && c.Path != PathClient:
		return bad("near-cache", "only with --path client: the near cache is the Go client's")
	case c.NearCache > 0 && c.NearTTL <= 0:
		return bad("near-ttl", "%s must be positive", c.NearTTL)
	}
	switch c.Path {
	case PathText, PathClient:
	case PathHTTP:
		if c.Ack == wire.AckAll {
			return bad("ack", "all with --path http: the HTTP API has no ack mode (its writes return once the primary applied them); use --path text or client")
		}
		if c.Server != "" && c.HTTPAddr == "" {
			return bad("http-addr", "--path http with --server needs the host:port of a node's HTTP API")
		}
	default:
		return bad("path", "%q: want text, client or http", c.Path)
	}
	if c.HTTPAddr != "" {
		if c.Server == "" {
			return bad("http-addr", "only with --server: the node started here serves HTTP on a free port")
		}
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			return bad("http-addr", "%q is not host:port", c.HTTPAddr)
		}
	}
	if err := checkKeyPrefix(c.KeyPrefix); err != nil {
		return bad("key-prefix", "%q: %v", c.KeyPrefix, err)
	}
	switch c.EchoSubject {
	case EchoFixed, EchoKeyed:
	default:
		return bad("echo-subject", "%q: want fixed or keyed", c.EchoSubject)
	}
	if c.Preloaded && (c.Server == "" || c.KeyPrefix == "") {
		return bad("preloaded", "needs a deployment (--server) and the --key-prefix its keys were written under")
	}
	if c.Preloaded && c.Workload == WorkloadIncr {
		return bad("preloaded", "incr needs counters, which only the run's own preload writes")
	}
	for _, x := range c.Extra {
		if x.Name == "" || x.Name == NameRoost || x.Name == NameEcho || x.Name == NameKV || x.Open == nil {
			return fmt.Errorf("%w: extra target %q: needs a name of its own and an Open", ErrConfig, x.Name)
		}
	}
	if (c.EchoServer == "") != (c.EchoBase == "") {
		return bad("echo-server", "an external echo needs both its URL and its subject base")
	}
	if c.Server == "" {
		if c.Nodes < 1 {
			return bad("nodes", "%d: need at least 1 (or --server)", c.Nodes)
		}
		if c.Nodes > 9 {
			return bad("nodes", "%d: at most 9", c.Nodes)
		}
	}
	if c.Procs {
		if c.Server != "" {
			return bad("procs", "meaningless with --server: it starts the nodes as processes")
		}
		if c.Exec == "" {
			return bad("procs", "no roost executable to start the nodes from (Config.Exec)")
		}
	}
	return nil
}

// rounds is how many rounds each target runs, and how long each lasts: as
// many whole Rounds as make up Duration, the last one shortened to fit.
func (c Config) rounds() []time.Duration {
	var rs []time.Duration
	for left := c.Duration; left > 0; left -= c.Round {
		rs = append(rs, min(left, c.Round))
	}
	return rs
}

// turns splits a round of d into the turns its targets alternate in: turns
// of Turn, the last one shortened to fit; one turn of d when Turn is 0 or
// not shorter than d.
func (c Config) turns(d time.Duration) []time.Duration {
	if c.Turn <= 0 || c.Turn >= d {
		return []time.Duration{d}
	}
	var ts []time.Duration
	for left := d; left > 0; left -= c.Turn {
		ts = append(ts, min(left, c.Turn))
	}
	return ts
}

// nodeHTTP is the --http of the i-th node started here: only the targets'
// node, the first, serves HTTP, and only for PathHTTP, on a free loopback
// port.
func (c Config) nodeHTTP(i int) string {
	if i == 0 && c.Path == PathHTTP {
		return "127.0.0.1:0"
	}
	return node.HTTPOff
}

// batching is the batching the Roost target really does: the text and HTTP
// APIs never batch.
func (c Config) batching() bool { return c.Path == PathClient && c.Batching }

// maxKeyPrefix leaves room under a node's default --max-key (1024 bytes) for
// the key's number.
const maxKeyPrefix = 1000

// checkKeyPrefix accepts a prefix that makes keys every target takes: the
// characters NATS KV allows in a key (letters, digits, "-", "_", "=", "/",
// "."), no empty dot-separated token, so no leading dot nor "..".
func checkKeyPrefix(p string) error {
	if len(p) > maxKeyPrefix {
		return fmt.Errorf("%d bytes, at most %d", len(p), maxKeyPrefix)
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_=/.", r)) {
			return fmt.Errorf("%q is not allowed: want letters, digits, and - _ = / .", r)
		}
	}
	if strings.HasPrefix(p, ".") || strings.Contains(p, "..") {
		return errors.New(`a key may not start with "." nor hold ".."`)
	}
	return nil
}
