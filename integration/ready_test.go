package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/roostkv/roost/node"
)

// readySafe asks n's rollout gate: its status code and reply.
func readySafe(t *testing.T, n *node.Node) (int, node.ReadyReply) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/v1/roost/ready?safe", n.HTTPAddr()))
	if err != nil {
		t.Fatalf("GET /v1/roost/ready?safe: %v", err)
	}
	defer resp.Body.Close()
	var r node.ReadyReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("ready reply: %v", err)
	}
	return resp.StatusCode, r
}

// The rollout gate: GET /v1/roost/ready?safe answers 200 only while every
// partition has its R copies in sync on live owners. A killed node makes it
// 503 with the count of under-replicated partitions (its copies are silent
// at once, before it is even declared dead), and it turns 200 again once
// the table moved on and the new replicas synced; /metrics says the same.
func TestReadySafeGate(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	n1 := nodes[0]
	eventually(t, 10*time.Second, func() error {
		if code, r := readySafe(t, n1); code != http.StatusOK || !r.Safe {
			return fmt.Errorf("ready?safe = %d %+v", code, r.Safety)
		}
		return nil
	})
	if code := httpGet(t, n1, "/v1/roost/ready"); code != http.StatusOK {
		t.Fatalf("ready = %d", code)
	}
	nodes[2].Kill()
	eventually(t, 5*time.Second, func() error {
		code, r := readySafe(t, n1)
		if code != http.StatusServiceUnavailable || r.Safe || r.Safety == nil || r.Safety.UnderReplicated == 0 {
			return fmt.Errorf("after a kill: ready?safe = %d %+v", code, r.Safety)
		}
		return nil
	})
	eventually(t, 15*time.Second, func() error {
		if code, r := readySafe(t, n1); code != http.StatusOK {
			return fmt.Errorf("ready?safe = %d %+v", code, r.Safety)
		}
		return nil
	})
	resp, err := http.Get(fmt.Sprintf("http://%s/metrics", n1.HTTPAddr()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\nroost_partitions_under_replicated 0\n") {
		t.Fatalf("/metrics lacks roost_partitions_under_replicated 0")
	}
}
