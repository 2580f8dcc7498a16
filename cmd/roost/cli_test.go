package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

// beRoost makes the test binary act as the roost command, so that tests can
// run it as a real process (signals, exit codes) without a separate build.
const beRoost = "ROOST_TEST_BE_ROOST"

func TestMain(m *testing.M) {
	if os.Getenv(beRoost) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startNode starts a node on random ports for one test.
func startNode(t *testing.T, edit func(*node.Config)) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Name = "cli-test"
	cfg.Listen = "127.0.0.1:-1"
	cfg.HTTP = "127.0.0.1:0"
	cfg.Logger = slog.New(slog.DiscardHandler)
	if edit != nil {
		edit(&cfg)
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// result is what one in-process run of the command printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// newTestApp returns an app on buffers, with env as its whole environment.
// SetMemoryLimit is recorded in *memLimit (atomically: serve's followHeap
// sets it from its own goroutine), never applied to the test process.
func newTestApp(env map[string]string, stdin string) (a *app, stdout, stderr *testkit.LogBuffer, memLimit *int64) {
	stdout, stderr, memLimit = &testkit.LogBuffer{}, &testkit.LogBuffer{}, new(int64)
	a = &app{
		stdin:          strings.NewReader(stdin),
		stdout:         stdout,
		stderr:         stderr,
		lookupEnv:      envMap(env),
		setMemoryLimit: func(n int64) int64 { atomic.StoreInt64(memLimit, n); return 0 },
	}
	return a, stdout, stderr, memLimit
}

// roost runs the command in-process with args and stdin, and no environment.
func roost(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return roostEnv(t, nil, stdin, args...)
}

func roostEnv(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	a, stdout, stderr, _ := newTestApp(env, stdin)
	code := a.run(context.Background(), args)
	return result{stdout.String(), stderr.String(), code}
}

// ok fails the test unless r succeeded, and returns its stdout.
func (r result) ok(t *testing.T) string {
	t.Helper()
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q; want success", r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// fails fails the test unless r exited with code, printing nothing on stdout
// and one line containing want on stderr (plus the --help hint for usage errors).
func (r result) fails(t *testing.T, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "roost: ") || !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want a line starting with \"roost: \" containing %q", r.stderr, want)
	}
	lines := strings.Count(r.stderr, "\n")
	if (code == exitError && lines != 1) || (code == exitUsage && lines > 3) {
		t.Errorf("stderr has %d lines: %q", lines, r.stderr)
	}
	if strings.Contains(r.stderr, "Flags:") {
		t.Errorf("stderr dumps the usage: %q", r.stderr)
	}
}

func version(t *testing.T, out string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimSuffix(out, "\n"), 10, 64)
	if err != nil || !strings.HasSuffix(out, "\n") || v == 0 {
		t.Fatalf("output %q is not a version number and a newline", out)
	}
	return v
}

func TestGetSetDel(t *testing.T) {
	n := startNode(t, nil)
	srv := n.ClientURL()

	v1 := version(t, roost(t, "", "set", "greeting", "hello", "--server", srv).ok(t))
	if got := roost(t, "", "get", "--server", srv, "greeting").ok(t); got != "hello" {
		t.Errorf("get printed %q, want exactly %q", got, "hello")
	}

	// Overwriting gives a higher version; flags after or before the key alike.
	v2 := version(t, roost(t, "", "--server", srv, "set", "greeting", "hi").ok(t))
	if v2 <= v1 {
		t.Errorf("second set got version %d, not above %d", v2, v1)
	}

	// A missing key: exit 1, a message on stderr, nothing on stdout.
	r := roost(t, "", "get", "nope", "--server", srv)
	r.fails(t, exitError, `key "nope" not found`)
	if r.stderr != "roost: key \"nope\" not found\n" {
		t.Errorf("stderr %q", r.stderr)
	}

	// Delete prints a version; the key is gone; deleting again still succeeds.
	version(t, roost(t, "", "del", "greeting", "--server", srv).ok(t))
	roost(t, "", "get", "greeting", "--server", srv).fails(t, exitError, "not found")
	version(t, roost(t, "", "del", "greeting", "--server", srv).ok(t))

	// Dotted keys are one key.
	roost(t, "", "set", "a.b.c", "dots", "--server", srv).ok(t)
	if got := roost(t, "", "get", "a.b.c", "--server", srv).ok(t); got != "dots" {
		t.Errorf("get a.b.c = %q", got)
	}
}

func TestSetFromStdin(t *testing.T) {
	n := startNode(t, nil)
	srv := n.ClientURL()
	binary := "\x00\xff\xfe line\nnext\n" // not UTF-8, with newlines: must round-trip exactly
	for _, args := range [][]string{
		{"set", "bin", "--server", srv},
		{"set", "bin", "-", "--server", srv},
	} {
		roost(t, binary, args...).ok(t)
		if got := roost(t, "", "get", "bin", "--server", srv).ok(t); got != binary {
			t.Errorf("%v then get: %q, want %q", args, got, binary)
		}
	}

	var item map[string]any
	out := roost(t, "", "get", "bin", "--json", "--server", srv).ok(t)
	if err := json.Unmarshal([]byte(out), &item); err != nil {
		t.Fatalf("get --json printed %q: %v", out, err)
	}
	if _, has := item["value"]; has {
		t.Errorf("get --json of a non-UTF-8 value has \"value\": %s", out)
	}
	if b, _ := base64.StdEncoding.DecodeString(item["value_base64"].(string)); string(b) != binary {
		t.Errorf("value_base64 decodes to %q, want %q", b, binary)
	}

	// An empty stdin sets an empty value.
	roost(t, "", "set", "empty", "--server", srv).ok(t)
	if got := roost(t, "", "get", "empty", "--server", srv).ok(t); got != "" {
		t.Errorf("get empty = %q", got)
	}
}

func TestJSONShapes(t *testing.T) {
	n := startNode(t, nil)
	srv := n.ClientURL()

	out := roost(t, "", "set", "k", "vé", "--ttl", "1h", "--flags", "42", "--json", "--server", srv).ok(t)
	var set struct {
		Key     string `json:"key"`
		Version uint64 `json:"version"`
	}
	if err := json.Unmarshal([]byte(out), &set); err != nil || set.Key != "k" || set.Version == 0 {
		t.Fatalf("set --json printed %q (%v)", out, err)
	}

	out = roost(t, "", "get", "k", "--json", "--server", srv).ok(t)
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("get --json printed %q: %v", out, err)
	}
	if got["key"] != "k" || got["value"] != "vé" || got["value_base64"] != base64.StdEncoding.EncodeToString([]byte("vé")) ||
		got["version"] != float64(set.Version) || got["flags"] != float64(42) {
		t.Errorf("get --json = %s", out)
	}
	exp, err := time.Parse(time.RFC3339Nano, got["expires"].(string))
	if err != nil || time.Until(exp) < 59*time.Minute || time.Until(exp) > 61*time.Minute {
		t.Errorf("expires = %v (%v), want about an hour from now", got["expires"], err)
	}

	// Without a TTL, expires is null (present, so the shape is stable).
	roost(t, "", "set", "forever", "x", "--server", srv).ok(t)
	out = roost(t, "", "get", "forever", "--json", "--server", srv).ok(t)
	if !strings.Contains(out, `"expires":null`) {
		t.Errorf("get --json without TTL = %s, want \"expires\":null", out)
	}

	out = roost(t, "", "del", "k", "--json", "--server", srv).ok(t)
	var del struct {
		Key     string `json:"key"`
		Version uint64 `json:"version"`
	}
	if err := json.Unmarshal([]byte(out), &del); err != nil || del.Key != "k" || del.Version <= set.Version {
		t.Errorf("del --json printed %q (%v)", out, err)
	}
}

func TestTTLSeconds(t *testing.T) {
	n := startNode(t, nil)
	srv := n.ClientURL()
	roost(t, "", "set", "k", "v", "--ttl", "30", "--server", srv).ok(t)
	var item itemJSON
	if err := json.Unmarshal([]byte(roost(t, "", "get", "k", "--json", "--server", srv).ok(t)), &item); err != nil {
		t.Fatal(err)
	}
	if item.Expires == nil || time.Until(*item.Expires) < 25*time.Second || time.Until(*item.Expires) > 31*time.Second {
		t.Errorf("expires = %v, want about 30s from now", item.Expires)
	}
	roost(t, "", "set", "k", "v", "--ttl", "soon", "--server", srv).fails(t, exitUsage, `"soon"`)
}

func TestCAS(t *testing.T) {
	n := startNode(t, nil)
	srv := n.ClientURL()

	// --cas 0: only if absent.
	v1 := version(t, roost(t, "", "set", "c", "one", "--cas", "0", "--server", srv).ok(t))
	roost(t, "", "set", "c", "two", "--cas", "0", "--server", srv).fails(t, exitError, `key "c" exists (CAS 0 means only if absent)`)

	// --cas VERSION: only if still that version.
	v2 := version(t, roost(t, "", "set", "c", "two", "--cas", strconv.FormatUint(v1, 10), "--server", srv).ok(t))
	roost(t, "", "set", "c", "three", "--cas", strconv.FormatUint(v1, 10), "--server", srv).fails(t, exitError, fmt.Sprintf(`key "c" is not at version %d (CAS mismatch)`, v1))
	if got := roost(t, "", "get", "c", "--server", srv).ok(t); got != "two" {
		t.Errorf("after a failed CAS the value is %q, want two", got)
	}

	roost(t, "", "del", "c", "--cas", strconv.FormatUint(v1, 10), "--server", srv).fails(t, exitError, fmt.Sprintf(`key "c" is not at version %d (CAS mismatch)`, v1))
	roost(t, "", "del", "c", "--cas", strconv.FormatUint(v2, 10), "--server", srv).ok(t)
	roost(t, "", "get", "c", "--server", srv).fails(t, exitError, "not found")
}

func TestKeys(t *testing.T) {
	n := startNode(t, nil)
	srv := n.ClientURL()
	for _, k := range []string{"user.2", "user.1", "order.1"} {
		roost(t, "", "set", k, "x", "--server", srv).ok(t)
	}
	if got := roost(t, "", "keys", "user.", "--server", srv).ok(t); got != "user.1\nuser.2\n" {
		t.Errorf("keys user. = %q", got)
	}
	if got := roost(t, "", "keys", "--server", srv).ok(t); got != "order.1\nuser.1\nuser.2\n" {
		t.Errorf("keys = %q", got)
	}
	if got := roost(t, "", "keys", "--json", "user.", "--server", srv).ok(t); got != `["user.1","user.2"]`+"\n" {
		t.Errorf("keys --json user. = %q", got)
	}
	if got := roost(t, "", "keys", "nothing", "--json", "--server", srv).ok(t); got != "[]\n" {
		t.Errorf("keys --json with no match = %q, want []", got)
	}
	if got := roost(t, "", "keys", "nothing", "--server", srv).ok(t); got != "" {
		t.Errorf("keys with no match = %q, want nothing", got)
	}
}

// TestKeysQuoted: keys with control characters, spaces, non-UTF-8 bytes or
// a leading quote are printed quoted, as roost watch prints them, so that
// escape sequences never reach the terminal raw and every line is one key.
func TestKeysQuoted(t *testing.T) {
	n := startNode(t, nil)
	srv := n.ClientURL()
	keys := map[string]string{ // key as stored → line roost keys prints
		"q.\x1b[31mred":   `"q.\x1b[31mred"`,
		"q.two\nlines":    `"q.two\nlines"`,
		"q.plain":         "q.plain",
		"q.a space":       `"q.a space"`,
		"q.\xff":          `"q.\xff"`,
		"q.tab\there":     `"q.tab\there"`,
		"q.\u00e9t\u00e9": "q.\u00e9t\u00e9",
	}
	for k := range keys {
		roost(t, "", "set", k, "x", "--server", srv).ok(t)
	}
	// `"q` sorts before `q.`; a key that starts with a quote is quoted too.
	roost(t, "", "set", `"q.plain"`, "x", "--server", srv).ok(t)
	keys[`"q.plain"`] = `"\"q.plain\""`

	out := roost(t, "", "keys", "--server", srv).ok(t)
	if strings.ContainsAny(out, "\x1b\t\xff") {
		t.Errorf("keys printed raw control characters or bytes: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(keys) {
		t.Fatalf("keys printed %d lines for %d keys: %q", len(lines), len(keys), out)
	}
	want := map[string]bool{}
	for k, line := range keys {
		want[line] = true
		if line != k { // a quoted line reads back as the key it stands for
			if back, err := strconv.Unquote(line); err != nil || back != k {
				t.Errorf("line %s unquotes to %q (%v), want %q", line, back, err, k)
			}
		}
	}
	for _, line := range lines {
		if !want[line] {
			t.Errorf("unexpected line %q in %q", line, out)
		}
		delete(want, line)
	}
	for line := range want {
		t.Errorf("missing line %s in %q", line, out)
	}

	// --json carries the keys as they are (bytes that are not UTF-8 become
	// U+FFFD, as encoding/json writes them).
	var got []string
	if err := json.Unmarshal([]byte(roost(t, "", "keys", "q.", "--json", "--server", srv).ok(t)), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys)-1 {
		t.Errorf("keys --json q. = %q", got)
	}
	for _, k := range got {
		if _, ok := keys[k]; !ok && k != "q.\uFFFD" {
			t.Errorf("keys --json gave %q, not a key that was set", k)
		}
	}
}

// TestPrintableKey: the one rule roost keys and roost watch share.
func TestPrintableKey(t *testing.T) {
	for key, want := range map[string]string{
		"a.b":       "a.b",
		"":          `""`,
		"\x1b[2J":   `"\x1b[2J"`,
		"a\nb":      `"a\nb"`,
		"a\rb":      `"a\rb"`,
		"a b":       `"a b"`,
		"\u200bzw":  `"\u200bzw"`, // zero-width space: not printable
		"\xc3\x28":  `"\xc3("`,
		`"x"`:       `"\"x\""`,
		`a"b`:       `a"b`,
		"\u00fcber": "\u00fcber",
	} {
		if got := printableKey(key); got != want {
			t.Errorf("printableKey(%q) = %s, want %s", key, got, want)
		}
	}
}

func TestStatus(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.MaxMemory = 64 << 20 })
	srv := n.ClientURL()
	roost(t, "", "set", "k", "v", "--server", srv).ok(t)
	roost(t, "", "get", "k", "--server", srv).ok(t)
	roost(t, "", "get", "missing", "--server", srv)

	out := roost(t, "", "status", "--server", srv).ok(t)
	for _, want := range []string{
		"name         cli-test\n", "id           " + n.ID() + "\n", "version      " + node.Version + "\n",
		"nats         " + srv + "\n", "http         http://" + n.HTTPAddr() + "\n",
		"datacenter   dc1\n", "keys         1 stored: 1 in partitions it leads, 0 copies of other primaries' keys\n", "/ 64MiB (", "hits         1\n", "misses       1\n",
		"evictions    0\n", "expirations  0\n", "uptime ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	out = roost(t, "", "status", "--wait-safe", "--server", srv).ok(t)
	if !strings.Contains(out, "safe         yes: every partition has 1 of 1 copies in sync\n") {
		t.Errorf("status --wait-safe of a single node:\n%s", out)
	}

	out = roost(t, "", "status", "--json", "--server", srv).ok(t)
	var st node.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json printed %q: %v", out, err)
	}
	if st.Name != "cli-test" || st.Store.Keys != 1 || st.Store.MaxBytes != 64<<20 || st.NATS != srv {
		t.Errorf("status --json = %s", out)
	}
}

func TestToken(t *testing.T) {
	n := startNode(t, func(c *node.Config) { c.Token = "s3cret" })
	srv := n.ClientURL()

	r := roost(t, "", "get", "k", "--server", srv)
	r.fails(t, exitError, "cannot connect to "+srv+": nats: Authorization Violation (wrong or missing --token)")
	roost(t, "", "get", "k", "--server", srv, "--token", "wrong").fails(t, exitError, "wrong or missing --token")

	roost(t, "", "set", "k", "v", "--server", srv, "--token", "s3cret").ok(t)
	// ROOST_TOKEN and ROOST_SERVER stand in for the flags.
	env := map[string]string{"ROOST_TOKEN": "s3cret", "ROOST_SERVER": srv}
	if got := roostEnv(t, env, "", "get", "k").ok(t); got != "v" {
		t.Errorf("get with ROOST_TOKEN = %q", got)
	}
	// The flag beats the environment.
	roostEnv(t, env, "", "get", "k", "--token", "wrong").fails(t, exitError, "Authorization Violation")
}

func TestCannotConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := "nats://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	roost(t, "", "get", "k", "--server", srv, "--timeout", "2s").fails(t, exitError, "cannot connect to "+srv+": ")
	roost(t, "", "status", "--server", srv, "--timeout", "2s").fails(t, exitError, "cannot connect to "+srv+": ")
}

// TestBenchServerCleansUp: `roost bench --server` names the prefix its keys
// went under, and leaves none of them in the deployment; --keep leaves them
// and says so.
func TestBenchServerCleansUp(t *testing.T) {
	n := startNode(t, nil)
	srv := n.ClientURL()
	roost(t, "", "set", "mine", "x", "--server", srv).ok(t)
	bench := []string{"bench", "--server", srv, "--keys", "300", "--concurrency", "2", "--duration", "200ms",
		"--round", "100ms", "--warmup", "0s", "--workload", "mixed", "--compare", "--quiet"}

	out := roost(t, "", bench...).ok(t)
	m := regexp.MustCompile(`keys: 300 under "(bench-[0-9a-f]{8}\.)" written into the deployment and removed after the run`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("bench output does not name the key prefix and the removal:\n%s", out)
	}
	if !strings.Contains(out, "× echo its ratio to echo's ops/s") || !strings.Contains(out, "(ratios of the median ops/s above)") {
		t.Errorf("bench output does not say what its ratios are:\n%s", out)
	}
	if got := roost(t, "", "keys", "--server", srv).ok(t); got != "mine\n" {
		t.Errorf("after bench the keys are %q, want only mine", got)
	}

	out = roost(t, "", append(bench, "--keep", "--key-prefix", "kept.")...).ok(t)
	if !strings.Contains(out, `keys: 300 under "kept." left in the deployment (--keep)`) {
		t.Errorf("bench --keep output:\n%s", out)
	}
	if got := strings.Count(roost(t, "", "keys", "kept.", "--server", srv).ok(t), "\n"); got != 300 {
		t.Errorf("bench --keep left %d keys under kept., want 300", got)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"get"}, "0 arguments given; usage: roost get KEY"},
		{[]string{"get", "a", "b"}, "2 arguments given"},
		{[]string{"set"}, "0 arguments given"},
		{[]string{"keys", "a", "b"}, "2 arguments given"},
		{[]string{"status", "x"}, "takes no arguments"},
		{[]string{"get", "k", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"set", "k", "v", "--cas", "-1"}, `invalid argument "-1" for "--cas"`},
		{[]string{"set", "k", "v", "--ttl", "-5s"}, `invalid argument "-5s" for "--ttl"`},
		{[]string{"get", "k", "--timeout", "0s"}, "--timeout: 0s must be positive"},
		{[]string{"serve", "extra"}, "takes no arguments"},
		{[]string{"bench", "--server", "nats://127.0.0.1:1", "--procs"}, "--procs: meaningless with --server"},
		{[]string{"bench", "--plot", "bench.jpg"}, "--plot bench.jpg: want a .svg, .png or .pdf file"},
		{[]string{"bench", "--plot", "bench"}, "--plot bench: want a .svg, .png or .pdf file"},
		{[]string{"bench", "--key-prefix", "a b."}, `--key-prefix: "a b.": ' ' is not allowed`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := roost(t, "", tt.args...)
			r.fails(t, exitUsage, tt.want)
			if !strings.Contains(r.stderr, "--help' for usage.") {
				t.Errorf("stderr %q lacks the --help hint", r.stderr)
			}
		})
	}
}

func TestHelpAndVersion(t *testing.T) {
	out := roost(t, "", "--help").ok(t)
	for _, cmd := range []string{"serve", "get", "set", "del", "keys", "status"} {
		if !strings.Contains(out, "  "+cmd+" ") {
			t.Errorf("--help does not list %s:\n%s", cmd, out)
		}
	}
	if out := roost(t, "", "--version").ok(t); !strings.Contains(out, node.Version) {
		t.Errorf("--version = %q", out)
	}
	out = roost(t, "", "serve", "--help").ok(t)
	for _, flag := range []string{"--name", "--listen", "--cluster-listen", "--cluster-advertise", "--join", "--nats", "--http", "--replicas",
		"--partitions", "--max-memory", "--token", "--tags", "--role", "--data-dir", "--config", "--max-value",
		"--max-key", "--prefix", "--log-level", "--log-format"} {
		if !strings.Contains(out, flag+" ") {
			t.Errorf("serve --help lacks %s", flag)
		}
	}
}

// serveInProcess runs `roost serve args...` in a goroutine with env as its
// environment and returns the node once it serves, and a stop function that
// cancels the command's context and returns its exit code.
func serveInProcess(t *testing.T, env map[string]string, args ...string) (n *node.Node, memLimit *int64, stop func() int) {
	t.Helper()
	a, stdout, stderr, memLimit := newTestApp(env, "")
	n, stop = serveApp(t, a, stdout, stderr, args...)
	return n, memLimit, stop
}

// serveApp is serveInProcess with a given app.
func serveApp(t *testing.T, a *app, stdout, stderr *testkit.LogBuffer, args ...string) (n *node.Node, stop func() int) {
	t.Helper()
	ready := make(chan *node.Node, 1)
	a.onReady = func(n *node.Node) { ready <- n }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- a.run(ctx, append([]string{"serve"}, args...)) }()
	select {
	case n = <-ready:
	case code := <-done:
		cancel()
		t.Fatalf("serve exited %d before it served; stderr:\n%s", code, stderr.String())
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("serve not ready after 10s; stderr:\n%s", stderr.String())
	}
	// The addresses are printed once ready.
	if out := stdout.String(); !strings.Contains(out, "NATS "+n.ClientURL()+"\n") {
		t.Errorf("serve printed %q, want the NATS URL", out)
	}
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("serve did not return within 5s of its context ending")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return n, stop
}

func TestServeInProcess(t *testing.T) {
	n, memLimit, stop := serveInProcess(t, nil,
		"--name", "inproc", "--listen", "127.0.0.1:-1", "--http", "127.0.0.1:0", "--max-memory", "64MiB", "--tags", "zone=a")
	srv := n.ClientURL()
	roost(t, "", "set", "k", "v", "--server", srv).ok(t)
	if got := roost(t, "", "get", "k", "--server", srv).ok(t); got != "v" {
		t.Errorf("get = %q", got)
	}
	st := n.Status()
	if st.Name != "inproc" || st.Store.MaxBytes != 64<<20 || st.Tags["zone"] != "a" || st.HTTP == "" {
		t.Errorf("status = %+v", st)
	}
	// Set from --max-memory at start, then less the store's mapped memory:
	// 8 MiB of values, kept outside the Go heap, lower the heap's limit.
	nc, err := nats.Connect(srv)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	value := make([]byte, 1024)
	for i := range 8192 {
		if _, err := nc.Request(fmt.Sprintf("roost.set.big%d", i), value, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if off := n.StoreOffHeap(); off < 6<<20 {
		t.Fatalf("the store maps %d bytes for 8 MiB of values, want at least 6 MiB", off)
	}
	wantHeapLimit(t, n, memLimit, 64<<20)
	if got := atomic.LoadInt64(memLimit); got > node.SoftMemoryLimit(64<<20)-6<<20 {
		t.Errorf("soft memory limit %d with 6 MiB or more of the store outside the heap; --max-memory alone sets %d", got, node.SoftMemoryLimit(64<<20))
	}
	if code := stop(); code != exitOK {
		t.Errorf("serve exited %d after its context ended, want 0", code)
	}
}

// TestServeStdout checks what serve prints once it serves, line by line in
// order: who, NATS, HTTP, and CLUSTER only when it listens for routes.
func TestServeStdout(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run("cluster "+strconv.FormatBool(cluster), func(t *testing.T) {
			a, stdout, stderr, _ := newTestApp(nil, "")
			args := []string{"--name", "out", "--listen", "127.0.0.1:-1", "--http", "off"}
			if cluster {
				args = append(args, "--cluster-listen", "127.0.0.1:-1")
			}
			n, stop := serveApp(t, a, stdout, stderr, args...)
			want := "roost " + node.Version + " serving as \"out\"\nNATS " + n.ClientURL() + "\nHTTP off\n"
			if cluster {
				want += "CLUSTER " + n.Bus().ClusterAddr() + "\n"
			}
			if code := stop(); code != exitOK {
				t.Fatalf("serve exited %d", code)
			}
			if got := stdout.String(); got != want {
				t.Errorf("serve printed %q, want %q", got, want)
			}
		})
	}
}

func TestServeStopTimeout(t *testing.T) {
	a, stdout, stderr, _ := newTestApp(nil, "")
	release := make(chan struct{})
	a.stopNode = func(n *node.Node) { <-release; n.Stop() } // a node that hangs on stop
	a.stopTimeout = 100 * time.Millisecond
	t.Cleanup(func() { close(release) })
	_, stop := serveApp(t, a, stdout, stderr, "--listen", "127.0.0.1:-1", "--http", "off")
	if code := stop(); code != exitError {
		t.Errorf("serve exited %d when its node hung on stop, want %d", code, exitError)
	}
	if !strings.Contains(stderr.String(), "roost: node did not stop within 100ms; exiting anyway\n") {
		t.Errorf("stderr lacks the reason:\n%s", stderr.String())
	}
}

func TestServeEnvAndConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "roost.yaml")
	yamlText := "name: from-file\nmax-memory: 1GiB\ntags: {zone: a, rack: r1}\nhttp: \"off\"\nlisten: 127.0.0.1:-1\n"
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ROOST_MAX_MEMORY": "32MiB", "ROOST_CONFIG": path, "GOMEMLIMIT": "1GiB"}
	n, memLimit, _ := serveInProcess(t, env, "--name", "from-flag")
	st := n.Status()
	if st.Name != "from-flag" {
		t.Errorf("name = %q: the flag must beat the file", st.Name)
	}
	if st.Store.MaxBytes != 32<<20 {
		t.Errorf("max bytes = %d: ROOST_MAX_MEMORY must beat the file", st.Store.MaxBytes)
	}
	if st.Tags["zone"] != "a" || st.Tags["rack"] != "r1" || st.HTTP != "" {
		t.Errorf("tags %v, http %q: from the file", st.Tags, st.HTTP)
	}
	if got := atomic.LoadInt64(memLimit); got != 0 {
		t.Errorf("soft memory limit set to %d although GOMEMLIMIT is set", got)
	}
}

// TestServeClusterAdvertise sets --cluster-advertise from each source and
// checks what a peer dialling the route port is told: the INFO a NATS
// server sends first on a route connection carries the advertised address
// as "ip" (a route URL) and "host"/"port"; without the flag, no "ip" (peers
// dial the address they saw) and the listen address.
func TestServeClusterAdvertise(t *testing.T) {
	const adv = "127.0.0.1:16222" // nothing listens there: only told, never dialled
	file := filepath.Join(t.TempDir(), "roost.yaml")
	if err := os.WriteFile(file, []byte("cluster-advertise: "+adv+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--listen", "127.0.0.1:-1", "--http", "off", "--cluster-listen", "127.0.0.1:-1"}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want bool // whether adv is advertised
	}{
		{"flag", []string{"--cluster-advertise", adv}, nil, true},
		{"env", nil, map[string]string{"ROOST_CLUSTER_ADVERTISE": adv}, true},
		{"file", []string{"--config", file}, nil, true},
		{"flag beats env", []string{"--cluster-advertise", adv}, map[string]string{"ROOST_CLUSTER_ADVERTISE": "127.0.0.1:1"}, true},
		{"unset", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, _, _ := serveInProcess(t, tt.env, append(base, tt.args...)...)
			listen := n.Bus().ClusterAddr()
			wantIP, wantAddr := "", listen
			if tt.want {
				wantIP, wantAddr = "nats-route://"+adv+"/", adv
			}
			info := routeInfo(t, listen)
			if addr := net.JoinHostPort(info.Host, strconv.Itoa(info.Port)); info.IP != wantIP || addr != wantAddr {
				t.Errorf("route INFO on %s tells peers ip %q, host:port %s; want %q, %s", listen, info.IP, addr, wantIP, wantAddr)
			}
		})
	}
}

// routeINFO is what a NATS server tells a peer that dials its route port
// about where to reach it.
type routeINFO struct {
	IP   string `json:"ip"` // route URL to dial, when advertised
	Host string `json:"host"`
	Port int    `json:"port"`
}

// routeInfo dials a NATS route port and returns the INFO the server
// greets it with.
func routeInfo(t *testing.T, addr string) routeINFO {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read INFO from %s: %v", addr, err)
	}
	js, ok := strings.CutPrefix(strings.TrimSpace(line), "INFO ")
	if !ok {
		t.Fatalf("%s greeted with %q, not INFO", addr, line)
	}
	var info routeINFO
	if err := json.Unmarshal([]byte(js), &info); err != nil {
		t.Fatalf("INFO %s: %v", js, err)
	}
	return info
}

func TestServeConfigErrors(t *testing.T) {
	badYAML := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("replicas: 2\nmax-mem: 1GiB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"serve", "--listen", "127.0.0.1:-1", "--http", "off"}
	tests := []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"--log-level", "error", "--data-dir", badYAML + "/dir"}, nil, exitError, "--data-dir: " + badYAML + "/dir"},
		{[]string{"--log-level", "error"}, map[string]string{"ROOST_DATA_DIR": badYAML + "/dir"}, exitError, "--data-dir: " + badYAML + "/dir"},
		{[]string{"--cluster-listen", "6222"}, nil, exitUsage, `--cluster-listen: "6222" is not host:port`},
		{[]string{"--cluster-listen", "127.0.0.1:-1", "--cluster-advertise", "6222"}, nil, exitUsage, `--cluster-advertise: "6222" is not host:port`},
		{[]string{"--cluster-listen", "127.0.0.1:-1", "--cluster-advertise", "h:0"}, nil, exitUsage, `--cluster-advertise: "h:0": port must be 1..65535`},
		{[]string{"--cluster-advertise", "127.0.0.1:6222"}, nil, exitUsage, "--cluster-advertise: the node has no routes to advertise"},
		{[]string{"--nats", "nats://127.0.0.1:1", "--cluster-advertise", "127.0.0.1:6222"}, nil, exitUsage, "--cluster-advertise: an external NATS does the clustering"},
		{nil, map[string]string{"ROOST_CLUSTER_LISTEN": "127.0.0.1:-1", "ROOST_CLUSTER_ADVERTISE": "nohost"}, exitUsage, `--cluster-advertise: "nohost" is not host:port`},
		{[]string{"--dead-after", "2"}, nil, exitUsage, "--dead-after"},
		{[]string{"--nats", "nats://127.0.0.1:1", "--join", "127.0.0.1:6222"}, nil, exitUsage, "an external NATS does the clustering"},
		{[]string{"--replicas", "0"}, nil, exitUsage, "--replicas: 0: need at least 1"},
		{[]string{"--role", "king"}, nil, exitUsage, `--role: "king"`},
		{[]string{"--max-memory", "lots"}, nil, exitUsage, `invalid argument "lots" for "--max-memory"`},
		{[]string{"--tags", "zone"}, nil, exitUsage, `"zone" is not key=value`},
		{[]string{"--log-level", "loud"}, nil, exitUsage, "want one of debug, info, warn, error"},
		{[]string{"--http", "nowhere"}, nil, exitUsage, `--http: "nowhere" is not host:port or "off"`},
		{nil, map[string]string{"ROOST_PARTITIONS": "many"}, exitUsage, `--partitions: invalid value "many" (from ROOST_PARTITIONS)`},
		{[]string{"--config", badYAML}, nil, exitUsage, `unknown key "max-mem"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			roostEnv(t, tt.env, "", append(base, tt.args...)...).fails(t, tt.code, tt.want)
		})
	}
}

func TestServePortInUse(t *testing.T) {
	n := startNode(t, nil)
	r := roost(t, "", "serve", "--listen", "127.0.0.1:-1", "--http", n.HTTPAddr(), "--log-level", "error")
	r.fails(t, exitError, "--http "+n.HTTPAddr())
	if !strings.Contains(r.stderr, "address already in use") {
		t.Errorf("stderr %q does not say why", r.stderr)
	}
}

// childEnv is the environment of a roost process started by a test. Under
// the race detector, processes sleep 1 s on exit unless told otherwise.
func childEnv() []string {
	return append(os.Environ(), beRoost+"=1", "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// lineWatcher is a process's stdout: it sends every line that starts with
// prefix, without the prefix, on found.
type lineWatcher struct {
	prefix  string
	found   chan string
	partial []byte
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		if rest, ok := strings.CutPrefix(string(w.partial[:i]), w.prefix); ok {
			select {
			case w.found <- rest:
			default:
			}
		}
		w.partial = w.partial[i+1:]
	}
}

// roostProcess starts the test binary as `roost args...`; the lines of its
// stdout that start with "NATS " arrive on the returned channel.
func roostProcess(t *testing.T, args ...string) (*exec.Cmd, <-chan string, *testkit.LogBuffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = childEnv()
	urls := &lineWatcher{prefix: "NATS ", found: make(chan string, 1)}
	stderr := &testkit.LogBuffer{}
	cmd.Stdout, cmd.Stderr = urls, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, urls.found, stderr
}

// TestServeSignals runs `roost serve` as a process and checks that SIGTERM
// and SIGINT stop it with exit code 0 within 5 s.
func TestServeSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, urls, stderr := roostProcess(t, "serve", "--listen", "127.0.0.1:-1", "--http", "off", "--name", "sig")

			// Ready: the NATS URL is printed, and it accepts connections.
			var url string
			select {
			case url = <-urls:
			case <-time.After(15 * time.Second):
				t.Fatalf("no NATS URL printed; stderr:\n%s", stderr.String())
			}
			conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "nats://"), 2*time.Second)
			if err != nil {
				t.Fatalf("dial %s: %v", url, err)
			}
			conn.Close()

			// Real process, real exit codes.
			res := runProcess(t, "get", "nope", "--server", url)
			if res.code != exitError || res.stdout != "" || res.stderr != "roost: key \"nope\" not found\n" {
				t.Errorf("get nope: %+v", res)
			}
			if res := runProcess(t, "set", "k", "v", "--server", url); res.code != exitOK {
				t.Errorf("set: %+v", res)
			}
			if res := runProcess(t, "get", "k", "--server", url); res.code != exitOK || res.stdout != "v" {
				t.Errorf("get k: %+v", res)
			}

			start := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err := <-waited:
				if err != nil {
					t.Errorf("serve after %s: %v; stderr:\n%s", sig, err, stderr.String())
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("serve took %s to exit", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("serve still running 5s after %s; stderr:\n%s", sig, stderr.String())
			}
		})
	}
}

// runProcess runs the test binary as `roost args...` to completion.
func runProcess(t *testing.T, args ...string) result {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout.String(), stderr.String(), code}
}

func TestProcessUsageExit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	res := runProcess(t, "frobnicate")
	if res.code != exitUsage || !strings.Contains(res.stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %+v", res)
	}
}

// wantHeapLimit waits for serve to have set the Go soft memory limit to
// node.HeapLimit of maxMemory and the store's mapped memory (followHeap
// looks every second); it fails the test after 5 s.
func wantHeapLimit(t *testing.T, n *node.Node, memLimit *int64, maxMemory int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, want := atomic.LoadInt64(memLimit), node.HeapLimit(maxMemory, n.StoreOffHeap())
		if d := got - want; d >= -1<<20 && d <= 1<<20 { // followHeap moves it by a MiB or more
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("soft memory limit %d, want %d (max memory %d, store mapped %d)", got, want, maxMemory, n.StoreOffHeap())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
