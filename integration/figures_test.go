package integration

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/node"
)

// Figures an operator sees say what they mean: distinct keys apart from
// stored copies, a node's current tags, and no figure for a dead member.

func roostStats(t *testing.T, n *node.Node) (node.StatsReply, []map[string]any) {
	t.Helper()
	code, body := agentDo(t, n, "GET", "/v1/roost/stats", "", "X-Consul-Token", agentToken)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/roost/stats = %d %s", code, body)
	}
	var reply node.StatsReply
	var raw struct{ Nodes []map[string]any }
	if err := json.Unmarshal([]byte(body), &reply); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	return reply, raw.Nodes
}

func TestFiguresDistinctKeysTagsAndDeadMembers(t *testing.T) {
	t.Parallel()
	skipInRaceStep(t, "the stats fan-out is raced by TestMetrics and TestAgent*")
	nodes := startCluster(t, 3, func(_ int, c *node.Config) {
		c.Token = agentToken
		c.Tags = map[string]string{"zone": "a"}
	})
	kv := consulKV(t, nodes[0], agentToken)
	const keys = 1000
	for i := range keys {
		mustPut(t, kv, &api.KVPair{Key: fmt.Sprintf("fig/%d", i), Value: []byte("v")})
	}

	// Distinct keys: the primaries' share sums to 1000, the stores hold 2000.
	eventually(t, 5*time.Second, func() error {
		stats, _ := roostStats(t, nodes[1])
		var primary, stored int64
		for _, s := range stats.Nodes {
			primary += s.PrimaryKeys
			stored += s.Keys
		}
		var statusPrimary, statusReplica int64
		for _, n := range nodes {
			k := n.Status().Cluster.Keys
			statusPrimary += k.Primary
			statusReplica += k.Replica
		}
		if primary != keys || stored != 2*keys || statusPrimary != keys || statusReplica != keys {
			return fmt.Errorf("stats: %d primary keys, %d stored; status: %d primary, %d replica; want %d, %d, %d, %d",
				primary, stored, statusPrimary, statusReplica, keys, 2*keys, keys, keys)
		}
		if r := nodes[0].Status().Cluster.Replicas; r != 2 {
			return fmt.Errorf("cluster replicas %d, want 2", r)
		}
		return nil
	})

	// Tags: /v1/status (what `roost status` prints) shows a re-tag.
	if code, body := agentDo(t, nodes[0], "PUT", "/v1/roost/members/n2/tags", `{"zone":"b","rack":"7"}`, "X-Consul-Token", agentToken); code != http.StatusOK {
		t.Fatalf("re-tag n2: %d %s", code, body)
	}
	want := map[string]string{"zone": "b", "rack": "7"}
	eventually(t, 2*time.Second, func() error {
		code, body := agentDo(t, nodes[1], "GET", "/v1/status", "", "X-Consul-Token", agentToken)
		var st node.Status
		if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
			return fmt.Errorf("/v1/status = %d %s", code, body)
		}
		if !maps.Equal(st.Tags, want) || !maps.Equal(nodes[1].Status().Tags, want) {
			return fmt.Errorf("n2's status tags = %v, want %v", st.Tags, want)
		}
		return nil
	})
	self, err := agentConsul(t, nodes[1], agentToken).Agent().Self()
	if err != nil || self["Meta"]["zone"] != "b" {
		t.Fatalf("n2's Self Meta = %v, %v; want zone b", self["Meta"], err)
	}

	// A dead member has no figures, rather than zeros; the distinct keys
	// still add up once the survivors lead its partitions.
	nodes[2].Bus().Close()
	eventually(t, 5*time.Second, func() error {
		if s := memberStatus(nodes[0], "n3"); s != membership.Dead {
			return fmt.Errorf("n1 sees n3 %s", s)
		}
		return nil
	})
	eventually(t, 5*time.Second, func() error {
		stats, raw := roostStats(t, nodes[0])
		var primary int64
		for i, s := range stats.Nodes {
			if s.Name != "n3" {
				primary += s.PrimaryKeys
				continue
			}
			if s.Status != membership.Dead || s.Error == "" {
				return fmt.Errorf("n3's stats = %+v, want dead with an error", s)
			}
			for _, k := range []string{"keys", "primary_keys", "errors", "replication_lag_seconds", "bytes", "ops"} {
				if v, ok := raw[i][k]; ok {
					return fmt.Errorf("dead n3's stats carry %s = %v: %v", k, v, raw[i])
				}
			}
		}
		if primary != keys {
			return fmt.Errorf("the survivors lead %d keys, want %d", primary, keys)
		}
		return nil
	})
}
