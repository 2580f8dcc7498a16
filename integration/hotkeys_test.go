package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/roostkv/roost/node"
)

// The hottest key of a node's reads heads its hot list, over HTTP and for
// every node of the cluster; the counts are the sampled reads scaled up.
func TestHotKeys(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: thousands of sequential requests; runs in the full suite")
	}
	nodes := startCluster(t, 2, nil)
	nc := connect(t, nodes[0])
	wantCode(t, "set", request(t, nc, "roost.set.hot", []byte("x")), 200)
	for i := range 1600 {
		request(t, nc, "roost.get.hot", nil)
		if i%10 == 0 {
			request(t, nc, fmt.Sprintf("roost.get.cold%d", i), nil) // misses count as reads too
		}
	}
	resp, err := http.Get("http://" + nodes[1].HTTPAddr() + "/v1/roost/hotkeys?n=3")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var reply node.HotKeysReply
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/roost/hotkeys: %d %v", resp.StatusCode, err)
	}
	if len(reply.Nodes) != 2 {
		t.Fatalf("hot lists of %d nodes, want 2: %+v", len(reply.Nodes), reply)
	}
	var top node.HotKey
	for _, nh := range reply.Nodes {
		if nh.Error != "" || len(nh.Keys) > 3 {
			t.Fatalf("node %s: %+v", nh.Name, nh)
		}
		if len(nh.Keys) > 0 && nh.Keys[0].Reads > top.Reads {
			top = nh.Keys[0]
		}
	}
	// 1600 reads sampled one in 16: about 100 samples, so about 1600
	// scaled reads, and far above any cold key's (each read once).
	if top.Key != "hot" || top.Reads < 600 || top.Reads > 3200 {
		t.Fatalf("hottest key %+v, want \"hot\" with about 1600 reads", top)
	}
	if code := httpGet(t, nodes[0], "/v1/roost/hotkeys?n=0"); code != 400 {
		t.Fatalf("?n=0: %d, want 400", code)
	}
}
