package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

// Process mode (Config.Procs): the nodes are `roost serve` children of this
// process, started from Config.Exec, one after the other. Each prints its
// addresses on stdout once it serves (cmd/roost/serve.go):
//
//	roost <version> serving as "bench1"
//	NATS nats://127.0.0.1:39811
//	HTTP off
//	CLUSTER 127.0.0.1:41207
//
// and the next one joins the first one's CLUSTER address.
const (
	procStartTimeout = 20 * time.Second       // from starting a child to its addresses on stdout
	procStopTimeout  = 5 * time.Second        // from SIGTERM to exit, as serve promises; then it is killed
	formTimeout      = 10 * time.Second       // from the last child serving to a formed cluster, as in-process
	formPoll         = 50 * time.Millisecond  // between two looks at the children's status
	statusTimeout    = 500 * time.Millisecond // per status request while waiting
	stderrKept       = 2048                   // bytes of a child's stderr kept for an error
)

// errProcExited is returned when a child exits before the run is over with it.
var errProcExited = errors.New("harness: node process exited")

// proc is one `roost serve` child.
type proc struct {
	name   string
	end    context.CancelFunc // sends SIGTERM; the child is killed procStopTimeout later
	lines  chan string        // its stdout, line by line
	stderr *tailBuffer        // the end of its stderr
	done   chan struct{}      // closed once it has exited and err is set
	err    error              // its exit status

	url, http, cluster string // as printed: NATS URL, HTTP URL or "off", route host:port; "" until then
}

// procDeployment starts Config.Nodes nodes as processes, clustered, and
// returns what deployment does: the first node's endpoint, and with Compare
// a TCP connection to it for the echo responder, whose payload limit is the
// node's (0 without Compare: only the KV baseline needs it).
func (r *runner) procDeployment(ctx context.Context) (ep Endpoint, maxPayload int32, echoConn *nats.Conn, err error) {
	procs, err := r.startProcs(ctx)
	if err != nil {
		return ep, 0, nil, err
	}
	first := procs[0] // the targets talk to the first node; the others lead their partitions
	ep = Endpoint{URL: first.url, HTTP: first.httpAddr()}
	if !r.cfg.Compare {
		return ep, 0, nil, nil
	}
	echoConn, err = dial(first.url, r.cfg.Token, "echo-responder", r.cfg.Timeout)
	if err != nil {
		return ep, 0, nil, err
	}
	r.note("echo: the responder is a client of %s's process over loopback TCP (with in-process nodes it has an in-process connection)", first.name)
	return ep, int32(echoConn.MaxPayload()), echoConn, nil
}

// startProcs starts the children one after the other, each joining the
// first, and waits until they form a cluster. r.close stops every child
// started, however far this got.
func (r *runner) startProcs(ctx context.Context) ([]*proc, error) {
	var procs []*proc
	for i := range r.cfg.Nodes {
		p, err := startProc(r.cfg.Exec, fmt.Sprintf("bench%d", i+1), r.serveArgs(i, procs), r.procEnv())
		if err != nil {
			return nil, err
		}
		r.onClose(p.stop)
		if err := p.waitServing(ctx, r.cfg.Nodes > 1); err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	if err := r.waitFormed(ctx, procs); err != nil {
		return nil, err
	}
	return procs, nil
}

// serveArgs are the arguments of child i, given the children before it: the
// flags of the in-process nodes' config (startNodes), the token aside.
func (r *runner) serveArgs(i int, before []*proc) []string {
	args := []string{"serve", "--name", fmt.Sprintf("bench%d", i+1), "--listen", "127.0.0.1:-1",
		"--http", r.cfg.nodeHTTP(i), "--prefix", r.cfg.Prefix, "--log-level", "warn"}
	if r.cfg.TextRoute != "" {
		args = append(args, "--text-route", r.cfg.TextRoute)
	}
	if r.cfg.Nodes > 1 {
		args = append(args, "--cluster-listen", "127.0.0.1:-1")
		if i > 0 {
			args = append(args, "--join", before[0].cluster)
		}
	}
	return args
}

// procEnv is the children's environment: this process's, less any ROOST_*
// setting, so that they run with serve's defaults as in-process nodes run
// with node.DefaultConfig; the token goes there rather than on the command
// line, which any local user can read.
func (r *runner) procEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ROOST_") {
			env = append(env, kv)
		}
	}
	if r.cfg.Token != "" {
		env = append(env, "ROOST_TOKEN="+r.cfg.Token)
	}
	return env
}

// startProc starts exe with args. It does not wait for the child to serve.
func startProc(exe, name string, args, env []string) (*proc, error) {
	ctx, end := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = env
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = procStopTimeout
	p := &proc{name: name, end: end, lines: make(chan string, 8), stderr: &tailBuffer{max: stderrKept}, done: make(chan struct{})}
	cmd.Stdout = &lineWriter{lines: p.lines}
	cmd.Stderr = p.stderr
	dieWithParent(cmd)
	started := make(chan error, 1)
	go func() {
		// The parent-death signal follows the thread that started the
		// child: keep this one until the child has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		end()
		return nil, fmt.Errorf("harness: start node process %s: %w", name, err)
	}
	return p, nil
}

// stop ends the child and returns once it has exited: SIGTERM, and a kill
// if it still runs procStopTimeout later. It may be called more than once.
func (p *proc) stop() {
	p.end()
	<-p.done
}

// waitServing reads the child's addresses from its stdout: NATS and HTTP,
// and CLUSTER when it is to cluster.
func (p *proc) waitServing(ctx context.Context, cluster bool) error {
	timer := time.NewTimer(procStartTimeout)
	defer timer.Stop()
	for p.url == "" || p.http == "" || cluster && p.cluster == "" {
		select {
		case line := <-p.lines: // one line of stdout
			p.parse(line)
		case <-p.done: // exited before serving
			return p.exited()
		case <-timer.C: // serving too slowly, or not a roost that prints CLUSTER
			return fmt.Errorf("harness: node process %s did not print its addresses (NATS, HTTP, CLUSTER lines) within %s%s", p.name, procStartTimeout, p.stderrTail())
		case <-ctx.Done(): // the run was interrupted
			return ctx.Err()
		}
	}
	return nil
}

// parse takes an address from one line of the child's stdout.
func (p *proc) parse(line string) {
	word, rest, _ := strings.Cut(line, " ")
	switch word {
	case "NATS":
		p.url = rest
	case "HTTP":
		p.http = rest
	case "CLUSTER":
		p.cluster = rest
	}
}

// httpAddr is the host:port of the child's HTTP API, "" when off.
func (p *proc) httpAddr() string {
	if p.http == "off" {
		return ""
	}
	return strings.TrimPrefix(p.http, "http://")
}

// exited is the error of a child that exited while it was still needed.
func (p *proc) exited() error {
	return fmt.Errorf("%w: %s: %v%s", errProcExited, p.name, p.err, p.stderrTail())
}

// stderrTail is the end of the child's stderr, ready to end an error message.
func (p *proc) stderrTail() string {
	if s := strings.TrimSpace(p.stderr.String()); s != "" {
		return "; its stderr ends:\n" + s
	}
	return ""
}

// waitFormed polls every child's own status until each routes by a table
// over all of them and leads its primaries, ready for requests.
func (r *runner) waitFormed(ctx context.Context, procs []*proc) error {
	clients := make([]*client.Client, len(procs))
	for i, p := range procs {
		nc, err := dial(p.url, r.cfg.Token, "status", r.cfg.Timeout)
		if err != nil {
			return err
		}
		defer nc.Close()
		c, err := client.New(nc, client.WithPrefix(r.cfg.Prefix), client.WithTimeout(statusTimeout), client.WithBatching(false))
		if err != nil {
			return err
		}
		defer c.Close()
		clients[i] = c
	}
	tick := time.NewTicker(formPoll)
	defer tick.Stop()
	deadline := time.NewTimer(formTimeout)
	defer deadline.Stop()
	for {
		notYet := r.notFormed(ctx, procs, clients)
		if notYet == nil {
			return nil
		}
		select {
		case <-tick.C: // look again
		case <-deadline.C: // give up, saying what was missing
			return fmt.Errorf("harness: %d node processes did not form a cluster within %s: %w", len(procs), formTimeout, notYet)
		case <-ctx.Done(): // the run was interrupted
			return ctx.Err()
		}
	}
}

// notFormed returns nil when every child routes over all of them and its
// primaries are ready, else what is missing: the first child found wanting.
func (r *runner) notFormed(ctx context.Context, procs []*proc, clients []*client.Client) error {
	for i, p := range procs {
		select {
		case <-p.done:
			return p.exited()
		default:
		}
		raw, err := clients[i].StatusOf(ctx, p.name)
		if err != nil {
			return fmt.Errorf("%s: status: %w", p.name, err)
		}
		var st node.Status
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("%s: status: %w", p.name, err)
		}
		if err := formedStatus(st, len(procs)); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return nil
}

// formedStatus reports what keeps a node of a cluster of n from serving its
// share: fewer servers in its table, or a partition it leads not ready.
func formedStatus(st node.Status, n int) error {
	if got := len(st.Cluster.Servers); got != n {
		return fmt.Errorf("routes over %d servers %v, want %d", got, st.Cluster.Servers, n)
	}
	ready := map[int]bool{}
	for _, ps := range st.Cluster.Replication {
		ready[ps.Partition] = ps.Role == "primary" && ps.Ready
	}
	for _, part := range st.Cluster.PrimaryOf {
		if !ready[part] {
			return fmt.Errorf("primary of partition %d, not ready", part)
		}
	}
	return nil
}

// lineWriter is a child's stdout: it sends each whole line on lines,
// dropping lines nobody reads (only the first few matter).
type lineWriter struct {
	lines   chan<- string
	partial []byte
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.partial = append(w.partial, b...)
	for {
		line, rest, ok := bytes.Cut(w.partial, []byte{'\n'})
		if !ok {
			return len(b), nil
		}
		select {
		case w.lines <- string(line):
		default:
		}
		w.partial = rest
	}
}

// tailBuffer keeps the last max bytes written to it, for a child's stderr,
// which exec's copier writes while an error may read it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
