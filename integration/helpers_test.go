package integration

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/internal/testkit"
	"github.com/roostkv/roost/node"
)

// testLogger is a node logger for t: warnings and errors go to t.Log, so
// that they show beside the test's own output when it fails and not at all
// when it passes (a failure is then found with its logs, not in a flood of
// every other test's). Lines logged after t ended go to stderr.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.close) // registered before the node's Stop: runs after it
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// testWriter writes lines to t.Log while t runs.
type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return os.Stderr.Write(p)
	}
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// startNode starts a node on random loopback ports, changed by edit, and
// stops it when the test ends.
func startNode(t *testing.T, edit func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Name = "n1"
	cfg.Listen = "127.0.0.1:-1"
	cfg.HTTP = "127.0.0.1:0"
	cfg.MaxMemory = 256 << 20
	cfg.Logger = testLogger(t)
	if edit != nil {
		edit(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatalf("node.New: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatalf("node.Start: %v", err)
	}
	t.Cleanup(n.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Ready(ctx); err != nil {
		t.Fatalf("node not ready: %v", err)
	}
	return n
}

// connect dials the node over TCP as an outside NATS client would.
func connect(t *testing.T, n *node.Node, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(n.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", n.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// reply is a text-API answer: the status code (200 when no error header),
// the error text, the body and the headers.
type reply struct {
	code int
	err  string
	body []byte
	hdr  nats.Header
}

// request sends one text-API request with the given headers ("Name", "value" pairs).
func request(t *testing.T, nc *nats.Conn, subject string, body []byte, headers ...string) reply {
	t.Helper()
	r, err := send(nc, subject, body, 5*time.Second, headers...)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	return r
}

// send is request without the test's Fatal, for goroutines and for callers
// that treat a failed request as an outcome: err is the transport's error
// (a timeout, no responders); an answer with an error code is a reply.
func send(nc *nats.Conn, subject string, body []byte, timeout time.Duration, headers ...string) (reply, error) {
	msg := nats.NewMsg(subject)
	msg.Data = body
	for i := 0; i+1 < len(headers); i += 2 {
		msg.Header.Set(headers[i], headers[i+1])
	}
	resp, err := nc.RequestMsg(msg, timeout)
	if err != nil {
		return reply{}, err
	}
	r := reply{code: 200, body: resp.Data, hdr: resp.Header}
	if c := resp.Header.Get("Nats-Service-Error-Code"); c != "" {
		r.code, _ = strconv.Atoi(c)
		r.err = resp.Header.Get("Nats-Service-Error")
	}
	return r, nil
}

func (r reply) version(t *testing.T) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(r.hdr.Get("Roost-Version"), 10, 64)
	if err != nil {
		t.Fatalf("reply has no Roost-Version (code %d, %q): %v", r.code, r.err, err)
	}
	return v
}

func wantCode(t *testing.T, what string, r reply, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: code %d (%q), want %d", what, r.code, r.err, code)
	}
	if code != 200 && r.err == "" {
		t.Fatalf("%s: error code %d without an error text", what, code)
	}
}

// eventually polls cond until it returns nil or the deadline passes
// (testkit.Eventually, the helper every package's tests share).
func eventually(t *testing.T, within time.Duration, cond func() error) {
	t.Helper()
	testkit.Eventually(t, within, cond)
}

// httpGet returns the status code of a GET on the node's HTTP API.
func httpGet(t *testing.T, n *node.Node, path string, header ...string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s%s", n.HTTPAddr(), path), nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// skipInRaceStep skips a long test under -short, which only CI's race step
// passes (.ci/run): the full suite runs it, and under -race its code paths
// are those of shorter tests that stay (named in why). It keeps the race
// step inside CI's time budget.
func skipInRaceStep(t *testing.T, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short (CI's race step): the full suite runs it; " + why)
	}
}
