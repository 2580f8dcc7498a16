package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/internal/testkit"
	"github.com/roostkv/roost/node"
)

// roostBinDir is the directory roostBin built into; "" until it ran.
var roostBinDir string

// roostBin builds the real roost binary once per test run.
var roostBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "roost-bin-")
	if err != nil {
		return "", err
	}
	roostBinDir = dir
	bin := filepath.Join(dir, "roost")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/roost").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	defaultParallel()
	code := m.Run()
	if roostBinDir != "" { // built by a test; not built here just to remove it
		os.RemoveAll(roostBinDir)
	}
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	for range 1000 {
		port := int(nextPort.Add(1))
		if port >= ephemeralLow {
			nextPort.Store(portsLow + int32(os.Getpid()%1000))
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		ln.Close()
		return port
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// The ports freePort hands out lie below Linux's ephemeral range (32768 up),
// where every listener on port 0 gets its port: an in-process node of a
// test running in parallel could otherwise take a port between freePort's
// check and the child process's bind ("address already in use"). Each test
// process starts at its own offset, so two test binaries seldom try the
// same port, and the check catches it when they do.
const (
	portsLow     = 20000
	ephemeralLow = 32768
)

var nextPort atomic.Int32

func init() { nextPort.Store(portsLow + int32(os.Getpid()%10000)) }

// proc is one `roost serve` process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	url    string // its NATS URL, once ready
	stderr *testkit.LogBuffer
	done   chan error // receives the exit status once

	serving  chan struct{} // closed once it printed its NATS URL
	printed  string        // that URL, set before serving is closed
	servedAt time.Time     // when it printed it, set before serving is closed
}

// startProc starts `roost serve` with args and waits until it prints its
// NATS URL. The process is killed when the test ends if still running.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := launchProc(t, name, args...)
	p.waitServing(t, 20*time.Second)
	return p
}

// launchProc starts `roost serve` with args and returns at once, while the
// node starts; waitServing waits for it. The process is killed when the
// test ends if still running.
func launchProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	bin, err := roostBin()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--name", name, "--http", "off", "--log-level", "warn"}, args...)...)
	cmd.Env = append(os.Environ(), "GOMEMLIMIT=") // the node's own memory limit logic
	p := &proc{name: name, cmd: cmd, stderr: &testkit.LogBuffer{}, done: make(chan error, 1), serving: make(chan struct{})}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "NATS "); ok && p.printed == "" {
				p.printed, p.servedAt = u, time.Now()
				close(p.serving)
			}
		}
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// isServing tells whether p has printed its NATS URL yet, without waiting.
func (p *proc) isServing() bool {
	select {
	case <-p.serving:
		return true
	default:
		return false
	}
}

// waitServing waits until p prints its NATS URL, and sets p.url.
func (p *proc) waitServing(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-p.serving:
		p.url = p.printed
	case err := <-p.done:
		t.Fatalf("%s exited before serving: %v\n%s", p.name, err, p.stderr)
	case <-time.After(within):
		t.Fatalf("%s did not serve within %s\n%s", p.name, within, p.stderr)
	}
}

// members asks the node at url for its view.
func members(t *testing.T, url string) (node.MembersReply, error) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return node.MembersReply{}, err
	}
	defer nc.Close()
	resp, err := nc.Request("roost.admin.members", nil, time.Second)
	if err != nil {
		return node.MembersReply{}, err
	}
	var r node.MembersReply
	return r, json.Unmarshal(resp.Data, &r)
}

// serversOf returns the servers the node at url computes its table over.
func serversOf(t *testing.T, url string) string {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	resp, err := nc.Request("roost.admin.status", nil, time.Second)
	if err != nil {
		return err.Error()
	}
	var st node.Status
	if err := json.Unmarshal(resp.Data, &st); err != nil {
		return err.Error()
	}
	return fmt.Sprint(st.Cluster.Servers)
}

// statusOf returns name's status and incarnation in the view of the node at url.
func statusOf(t *testing.T, url, name string) (string, uint64) {
	t.Helper()
	r, err := members(t, url)
	if err != nil {
		return "unreachable: " + err.Error(), 0
	}
	for _, m := range r.Members {
		if m.Name == name {
			return string(m.Status), m.Incarnation
		}
	}
	return "unknown", 0
}

// TestThreeProcesses runs three real roost processes with the default
// heartbeat timings: they form a cluster, a killed node is marked dead and
// comes back alive with a higher incarnation, a terminated one leaves.
func TestThreeProcesses(t *testing.T) {
	// Not parallel: kill -9 and SIGTERM with failure detection and exit bounds.
	if testing.Short() {
		t.Skip("starts three processes and waits for failure detection")
	}
	ports := map[string][2]int{}
	for _, n := range []string{"n1", "n2", "n3"} {
		ports[n] = [2]int{freePort(t), freePort(t)}
	}
	args := func(name string) []string {
		a := []string{
			"--listen", fmt.Sprintf("127.0.0.1:%d", ports[name][0]),
			"--cluster-listen", fmt.Sprintf("127.0.0.1:%d", ports[name][1]),
		}
		if name != "n1" {
			a = append(a, "--join", fmt.Sprintf("nats://127.0.0.1:%d", ports["n1"][1]))
		}
		return a
	}
	mustBin(t) // build first: the clock below is the cluster's
	start := time.Now()
	procs := map[string]*proc{}
	for _, n := range []string{"n1", "n2", "n3"} {
		procs[n] = startProc(t, n, args(n)...)
	}
	eventually(t, 5*time.Second-time.Since(start), func() error {
		for _, p := range procs {
			for _, n := range []string{"n1", "n2", "n3"} {
				if s, _ := statusOf(t, p.url, n); s != "alive" {
					return fmt.Errorf("%s sees %s %s", p.name, n, s)
				}
			}
		}
		return nil
	})
	t.Logf("three processes see each other alive %s after the first started", time.Since(start).Round(time.Millisecond))
	// Formed means every node also routes by the same table.
	eventually(t, 5*time.Second, func() error {
		for _, p := range procs {
			if s := serversOf(t, p.url); s != "[n1 n2 n3]" {
				return fmt.Errorf("%s routes over %s", p.name, s)
			}
		}
		return nil
	})

	// Keys written through n1 read back through n3.
	nc1, nc3 := dialURL(t, procs["n1"].url), dialURL(t, procs["n3"].url)
	for i := range 200 {
		wantCode(t, "set through n1", request(t, nc1, fmt.Sprintf("roost.set.proc.%d", i), []byte(fmt.Sprint(i))), 200)
	}
	for i := range 200 {
		if r := request(t, nc3, fmt.Sprintf("roost.get.proc.%d", i), nil); r.code != 200 || string(r.body) != fmt.Sprint(i) {
			t.Fatalf("get proc.%d through n3 = %d %q", i, r.code, r.body)
		}
	}
	// roost members --json from the CLI has the documented fields.
	out, err := exec.Command(mustBin(t), "members", "--json", "--server", procs["n1"].url).Output()
	if err != nil {
		t.Fatalf("roost members --json: %v", err)
	}
	var list []map[string]any
	if err := json.Unmarshal(out, &list); err != nil || len(list) != 3 {
		t.Fatalf("roost members --json = %s (%v)", out, err)
	}
	for _, field := range []string{"name", "id", "status", "role", "tags", "addr", "partitions", "last_seen"} {
		if _, ok := list[0][field]; !ok {
			t.Fatalf("roost members --json lacks %q: %s", field, out)
		}
	}

	// roost status speaks for the node --server reaches, not any node.
	for _, name := range []string{"n1", "n2", "n3"} {
		out, err := exec.Command(mustBin(t), "status", "--json", "--server", procs[name].url).Output()
		var st node.Status
		if err != nil || json.Unmarshal(out, &st) != nil || st.Name != name || len(st.Cluster.PrimaryOf) == 0 {
			t.Fatalf("roost status --server %s answered %s (%v)", procs[name].url, out, err)
		}
	}

	// kill -9 n2: its peers mark it dead within 3 s (plus the poll's own lag).
	_, inc := statusOf(t, procs["n1"].url, "n2")
	killed := time.Now()
	if err := procs["n2"].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-procs["n2"].done
	for _, peer := range []string{"n1", "n3"} {
		eventually(t, 3300*time.Millisecond-time.Since(killed), func() error {
			if s, _ := statusOf(t, procs[peer].url, "n2"); s != "dead" {
				return fmt.Errorf("%s sees n2 %s", peer, s)
			}
			return nil
		})
	}
	t.Logf("killed n2 marked dead on both peers after %s", time.Since(killed).Round(time.Millisecond))

	// Restarted with the same name: alive again, with a higher incarnation.
	procs["n2"] = startProc(t, "n2", args("n2")...)
	eventually(t, 5*time.Second, func() error {
		s, inc2 := statusOf(t, procs["n1"].url, "n2")
		if s != "alive" || inc2 <= inc {
			return fmt.Errorf("n1 sees n2 %s with incarnation %d (was %d)", s, inc2, inc)
		}
		return nil
	})

	// SIGTERM n3: out of its peers' tables within 1 s (it drains as a
	// proxy while it hands its copies over), left on them and exited 0
	// within 5 s.
	termed := time.Now()
	if err := procs["n3"].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, func() error {
		if servers := serversOf(t, procs["n1"].url); strings.Contains(servers, "n3") {
			return fmt.Errorf("n1 computes its table over %s", servers)
		}
		return nil
	})
	t.Logf("terminated n3 out of the tables after %s", time.Since(termed).Round(time.Millisecond))
	eventually(t, 5*time.Second-time.Since(termed), func() error {
		if s, _ := statusOf(t, procs["n1"].url, "n3"); s != "left" {
			return fmt.Errorf("n1 sees n3 %s", s)
		}
		return nil
	})
	t.Logf("terminated n3 marked left after %s", time.Since(termed).Round(time.Millisecond))
	select {
	case err := <-procs["n3"].done:
		if err != nil {
			t.Fatalf("n3 exited with %v after SIGTERM\n%s", err, procs["n3"].stderr)
		}
	case <-time.After(5*time.Second - time.Since(termed)):
		t.Fatal("n3 did not exit within 5 s of SIGTERM")
	}
}

func mustBin(t *testing.T) string {
	t.Helper()
	bin, err := roostBin()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func dialURL(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// procCluster is a cluster of `roost serve` processes on fixed loopback
// ports, one pair (NATS client, route) per node name, so that a node
// restarted under its name comes back where it was: its peers' routes find
// it again and its clients reconnect. Every node joins every other (NATS
// retries the routes of nodes not up yet), so any node can restart while
// any other is down. All methods are for the test's goroutine.
type procCluster struct {
	t       *testing.T
	names   []string
	args    []string            // given to every node, after the harness's own
	client  map[string]int      // NATS client port per name
	route   map[string]int      // route port per name
	dataDir map[string]string   // --data-dir per name, kept across restarts; nil = none
	join    map[string][]string // route URLs each node --joins; default every other node
	extra   map[string][]string // more serve flags per node, after args
	begin   time.Time           // zero of the event times
	procs   map[string]*proc    // the running process of each name; nil while down
	ended   []*proc             // every process started, in order, for the logs
	events  []procEvent         // what the harness did, when (for a failure's timeline)
}

// procClusterOptions shapes a procCluster.
type procClusterOptions struct {
	Size    int      // nodes n1..nSize; 0 = 3
	DataDir bool     // each node keeps a --data-dir across its restarts
	Args    []string // extra serve flags for every node (--replicas 2, ...)
}

// startProcCluster starts opts.Size processes n1.. at once and waits until
// every one sees all the others alive and routes over all of them. They
// are killed when the test ends; if it failed, every process's log (info
// level) is saved to the test's artifact directory and the harness's
// timeline is logged.
func startProcCluster(t *testing.T, opts procClusterOptions) *procCluster {
	t.Helper()
	c := newProcCluster(t, opts)
	for _, name := range c.names {
		c.launch(name) // all at once: each takes about 1.5 s to serve
	}
	c.waitFormed(20 * time.Second)
	return c
}

// newProcCluster is startProcCluster without the start: the ports are
// chosen, and the test may change c.join and c.extra before it launches
// the nodes itself.
func newProcCluster(t *testing.T, opts procClusterOptions) *procCluster {
	t.Helper()
	if opts.Size == 0 {
		opts.Size = 3
	}
	mustBin(t) // build first: start-up times are the cluster's
	c := &procCluster{
		t: t, args: opts.Args, begin: time.Now(),
		client: map[string]int{}, route: map[string]int{}, procs: map[string]*proc{},
		join: map[string][]string{}, extra: map[string][]string{},
	}
	if opts.DataDir {
		c.dataDir = map[string]string{}
	}
	for i := range opts.Size {
		name := fmt.Sprintf("n%d", i+1)
		c.names = append(c.names, name)
		c.client[name], c.route[name] = freePort(t), freePort(t)
		if c.dataDir != nil {
			c.dataDir[name] = t.TempDir()
		}
	}
	for _, name := range c.names {
		for _, peer := range c.names {
			if peer != name {
				c.join[name] = append(c.join[name], "nats://"+c.routeAddr(peer))
			}
		}
	}
	// Registered before any process: runs after their kills, so that their
	// stderr is complete and no longer written.
	t.Cleanup(c.saveLogsIfFailed)
	return c
}

// routeAddr is the host:port node name listens for routes on.
func (c *procCluster) routeAddr(name string) string {
	return fmt.Sprintf("127.0.0.1:%d", c.route[name])
}

// event records what the harness did now, for the timeline.
func (c *procCluster) event(format string, args ...any) {
	c.eventAt(time.Now(), format, args...)
}

// eventAt records what happened at a time, for the timeline.
func (c *procCluster) eventAt(now time.Time, format string, args ...any) {
	c.events = append(c.events, procEvent{now, fmt.Sprintf(format, args...)})
}

// procEvent is a line of a procCluster's timeline.
type procEvent struct {
	at   time.Time
	what string
}

// start starts node name (again), and returns once it serves.
func (c *procCluster) start(name string) *proc {
	c.t.Helper()
	p := c.launch(name)
	c.awaitServing(name)
	return p
}

// awaitServing waits until node name, launched, serves.
func (c *procCluster) awaitServing(name string) {
	c.t.Helper()
	p := c.running(name)
	if p.url != "" {
		return
	}
	p.waitServing(c.t, 20*time.Second)
	c.eventAt(p.servedAt, "%s serves", name)
}

// launch starts node name (again) and returns at once, while it starts.
func (c *procCluster) launch(name string) *proc {
	c.t.Helper()
	if c.procs[name] != nil {
		c.t.Fatalf("start %s: already running", name)
	}
	args := []string{"--log-level", "info",
		"--listen", fmt.Sprintf("127.0.0.1:%d", c.client[name]),
		"--cluster-listen", c.routeAddr(name)}
	if len(c.join[name]) > 0 {
		args = append(args, "--join", strings.Join(c.join[name], ","))
	}
	if c.dataDir != nil {
		args = append(args, "--data-dir", c.dataDir[name])
	}
	args = append(append(args, c.args...), c.extra[name]...)
	c.event("start %s", name)
	p := launchProc(c.t, name, args...)
	c.procs[name] = p
	c.ended = append(c.ended, p)
	return p
}

// kill sends node name SIGKILL and waits until it is gone.
func (c *procCluster) kill(name string) {
	c.t.Helper()
	p := c.running(name)
	if p.url == "" && p.isServing() { // served, unawaited: on the timeline too
		c.eventAt(p.servedAt, "%s serves", name)
	}
	c.event("kill -9 %s", name)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatalf("kill %s: %v", name, err)
	}
	<-p.done
	c.procs[name] = nil
	c.event("%s is gone", name)
}

// stop sends node name SIGTERM (a graceful leave) and waits until it
// exits, which must be with status 0 within 5 s plus a second of slack.
func (c *procCluster) stop(name string) {
	c.t.Helper()
	p := c.running(name)
	c.event("SIGTERM %s", name)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		c.t.Fatalf("SIGTERM %s: %v", name, err)
	}
	select {
	case err := <-p.done:
		c.procs[name] = nil
		c.event("%s exited: %v", name, err)
		if err != nil {
			c.t.Errorf("%s exited with %v after SIGTERM", name, err)
		}
	case <-time.After(6 * time.Second):
		c.t.Fatalf("%s still running 6 s after SIGTERM", name)
	}
}

func (c *procCluster) running(name string) *proc {
	c.t.Helper()
	p := c.procs[name]
	if p == nil {
		c.t.Fatalf("%s is not running", name)
	}
	return p
}

// url is the NATS URL of node name (whether it runs or not: the port is
// its own for the test's life).
func (c *procCluster) url(name string) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.client[name])
}

// urls are the NATS URLs of every node, comma-separated, for a client that
// should fail over between them.
func (c *procCluster) urls() string {
	var us []string
	for _, name := range c.names {
		us = append(us, c.url(name))
	}
	return strings.Join(us, ",")
}

// up lists the nodes running now.
func (c *procCluster) up() []string {
	var up []string
	for _, name := range c.names {
		if c.procs[name] != nil {
			up = append(up, name)
		}
	}
	return up
}

// waitFormed waits until every running node sees every running node alive
// and computes its table over exactly them.
func (c *procCluster) waitFormed(within time.Duration) {
	c.t.Helper()
	up := c.up()
	for _, name := range up {
		c.awaitServing(name)
	}
	want := fmt.Sprint(up)
	eventually(c.t, within, func() error {
		for _, a := range up {
			for _, b := range up {
				if s, _ := statusOf(c.t, c.url(a), b); s != "alive" {
					return fmt.Errorf("%s sees %s %s", a, b, s)
				}
			}
			if s := serversOf(c.t, c.url(a)); s != want {
				return fmt.Errorf("%s routes over %s, want %s", a, s, want)
			}
		}
		return nil
	})
	c.event("formed over %v", up)
}

// waitStatus waits until node viewer sees node name with status ("dead",
// "alive", "left").
func (c *procCluster) waitStatus(viewer, name, status string, within time.Duration) {
	c.t.Helper()
	eventually(c.t, within, func() error {
		if s, _ := statusOf(c.t, c.url(viewer), name); s != status {
			return fmt.Errorf("%s sees %s %s, want %s", viewer, name, s, status)
		}
		return nil
	})
	c.event("%s sees %s %s", viewer, name, status)
}

// waitRestarted waits until node viewer sees node name alive with an
// incarnation above old: the first heartbeat of a restarted process.
func (c *procCluster) waitRestarted(viewer, name string, old uint64, within time.Duration) {
	c.t.Helper()
	eventually(c.t, within, func() error {
		if s, inc := statusOf(c.t, c.url(viewer), name); s != "alive" || inc <= old {
			return fmt.Errorf("%s sees %s %s with incarnation %d, want alive above %d", viewer, name, s, inc, old)
		}
		return nil
	})
	c.event("%s sees %s alive again", viewer, name)
}

// saveLogsIfFailed writes, when the test failed (or ROOST_KEEP_LOGS is
// set), each process's stderr to <artifact dir>/<name>.<run>.log and logs
// the harness's timeline.
func (c *procCluster) saveLogsIfFailed() {
	if !c.t.Failed() && os.Getenv("ROOST_KEEP_LOGS") == "" {
		return
	}
	slices.SortStableFunc(c.events, func(a, b procEvent) int { return a.at.Compare(b.at) })
	var b strings.Builder
	for _, e := range c.events {
		fmt.Fprintf(&b, "\n  %s (+%s) %s", e.at.Format("15:04:05.000"), e.at.Sub(c.begin).Round(time.Millisecond), e.what)
	}
	c.t.Logf("timeline of the harness (wall clock, as in the logs):%s", b.String())
	dir := c.t.ArtifactDir()
	runs := map[string]int{}
	for _, p := range c.ended {
		runs[p.name]++
		path := filepath.Join(dir, fmt.Sprintf("%s.%d.log", p.name, runs[p.name]))
		if err := os.WriteFile(path, p.stderr.Bytes(), 0o644); err != nil {
			c.t.Logf("save %s: %v", path, err)
		}
	}
	c.t.Logf("process logs (info level) in %s", dir)
}
