package integration

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// natsCLI returns the stock nats CLI that .ci/run builds (ROOST_NATS_CLI),
// or skips: a newcomer's `go test ./...` needs no extra tools.
func natsCLI(t *testing.T) string {
	t.Helper()
	path := os.Getenv("ROOST_NATS_CLI")
	if path == "" {
		t.Skip("ROOST_NATS_CLI is not set; .ci/run builds the stock nats CLI and sets it")
	}
	return path
}

// runNATS runs the stock nats CLI against url and returns stdout+stderr.
func runNATS(t *testing.T, cli, url string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(cli, append([]string{"--server", url, "--timeout", "5s"}, args...)...)
	cmd.Env = append(os.Environ(), "NATS_CONTEXT=", "HOME="+t.TempDir())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("nats %v hung; output so far: %s", args, out.String())
		return "", nil
	}
}

// TestStockNATSCLI drives a node with the stock nats CLI, as the README's
// quickstart does: set, get, delete with TTL, flags and CAS, micro ls.
func TestStockNATSCLI(t *testing.T) {
	t.Parallel()
	cli := natsCLI(t)
	n := startNode(t, nil)
	url := n.ClientURL()
	must := func(args ...string) string {
		t.Helper()
		out, err := runNATS(t, cli, url, args...)
		if err != nil {
			t.Fatalf("nats %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	must("req", "roost.set.greeting", "hello", "-H", "Roost-TTL:10m", "-H", "Roost-Flags:7")
	if out := must("req", "--raw", "roost.get.greeting", ""); strings.TrimSpace(out) != "hello" {
		t.Fatalf("nats req --raw roost.get.greeting = %q, want hello", out)
	}
	out := must("req", "roost.get.greeting", "")
	for _, want := range []string{"Roost-Version", "Roost-Flags: 7", "Roost-Expires", "hello"} {
		if !strings.Contains(out, want) {
			t.Fatalf("nats req roost.get.greeting lacks %q:\n%s", want, out)
		}
	}
	// CAS 0 on a present key: the CLI shows the service error.
	if out := must("req", "roost.set.greeting", "again", "-H", "Roost-CAS:0"); !strings.Contains(out, "409") {
		t.Fatalf("CAS 0 on a present key did not show 409:\n%s", out)
	}
	must("req", "roost.del.greeting", "")
	if out := must("req", "roost.get.greeting", ""); !strings.Contains(out, "404") {
		t.Fatalf("get after delete did not show 404:\n%s", out)
	}
	if out := must("micro", "ls"); !strings.Contains(out, "roost") {
		t.Fatalf("nats micro ls does not list roost:\n%s", out)
	}
}
