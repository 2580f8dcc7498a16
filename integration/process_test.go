package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/node"
)

// roostBin builds the real roost binary once per test run.
var roostBin = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "roost-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "roost")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/roost").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if bin, err := roostBin(); err == nil && bin != "" {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is one `roost serve` process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	url    string // its NATS URL, once ready
	stderr *bytes.Buffer
	done   chan error // receives the exit status once
}

// startProc starts `roost serve` with args and waits until it prints its
// NATS URL. The process is killed when the test ends if still running.
func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	bin, err := roostBin()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--name", name, "--http", "off", "--log-level", "warn"}, args...)...)
	cmd.Env = append(os.Environ(), "GOMEMLIMIT=") // the node's own memory limit logic
	p := &proc{name: name, cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "NATS "); ok {
				urls <- u
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
	select {
	case p.url = <-urls:
		return p
	case err := <-p.done:
		t.Fatalf("%s exited before serving: %v\n%s", name, err, p.stderr)
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not serve within 20s\n%s", name, p.stderr)
	}
	return nil
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

	// SIGTERM n3: left on its peers within 1 s, and it exits 0 within 5 s.
	termed := time.Now()
	if err := procs["n3"].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Second, func() error {
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
