package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoServer checks that an application importing the client does not
// link nats-server: the client's wire types come from bus/wire.
func TestLinksNoServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/nats-io/nats-server") {
			t.Fatalf("the client links %s", dep)
		}
	}
}
