package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/roostkv/roost/node"
)

// scrape reads n's /metrics (no token) into metric families.
func scrape(t *testing.T, n *node.Node) map[string]*dto.MetricFamily {
	t.Helper()
	return scrapeAddr(t, n.HTTPAddr())
}

// scrapeAddr reads the /metrics of the node serving HTTP at addr (host:port).
func scrapeAddr(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mf
}

// metricValue is the value of the sample of family name whose labels
// include labels ("k", "v" pairs); for a histogram, its count.
func metricValue(t *testing.T, mf map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := mf[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Fatalf("no sample of %s with %v", name, labels)
	return 0
}

// clusterSum is metricValue summed over every node's scrape.
func clusterSum(t *testing.T, scrapes []map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	sum := 0.0
	for _, mf := range scrapes {
		sum += metricValue(t, mf, name, labels...)
	}
	return sum
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, func(i int, c *node.Config) {
		c.Token = agentToken
		c.SweepInterval = 50 * time.Millisecond
	})
	nc := connect(t, nodes[0], nats.Token(agentToken))
	const keys = 120
	for i := range keys {
		wantCode(t, "set", request(t, nc, fmt.Sprintf("roost.set.m%d", i), []byte("0123456789")), 200)
	}
	for i := range keys {
		wantCode(t, "get", request(t, nc, fmt.Sprintf("roost.get.m%d", i), nil), 200)
	}
	for i := range 7 {
		wantCode(t, "get missing", request(t, nc, fmt.Sprintf("roost.get.nothing%d", i), nil), 404)
	}
	for i := range 5 {
		wantCode(t, "CAS mismatch", request(t, nc, fmt.Sprintf("roost.set.m%d", i), []byte("x"), "Roost-CAS", "999999"), 409)
	}
	for i := range 20 {
		wantCode(t, "del", request(t, nc, fmt.Sprintf("roost.del.m%d", i), nil), 200)
	}
	for i := range 10 {
		wantCode(t, "set with TTL", request(t, nc, fmt.Sprintf("roost.set.ttl%d", i), []byte("v"), "Roost-TTL", "50ms"), 200)
	}

	// /metrics needs no token; the counters add up across the cluster.
	eventually(t, 5*time.Second, func() error {
		scrapes := make([]map[string]*dto.MetricFamily, len(nodes))
		for i, n := range nodes {
			scrapes[i] = scrape(t, n)
		}
		if got := clusterSum(t, scrapes, "roost_store_expirations_total"); got < 10 {
			return fmt.Errorf("%v expirations, want 10", got)
		}
		for _, c := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"roost_operations_total", []string{"op", "set", "result", "ok"}, keys + 10},
			{"roost_operations_total", []string{"op", "set", "result", "conflict"}, 5},
			{"roost_operations_total", []string{"op", "get", "result", "ok"}, keys},
			{"roost_operations_total", []string{"op", "get", "result", "not_found"}, 7},
			{"roost_operations_total", []string{"op", "del", "result", "ok"}, 20},
			{"roost_operations_total", []string{"op", "del", "result", "error"}, 0},
			{"roost_operation_duration_seconds", []string{"op", "set"}, keys + 10 + 5},
			{"roost_operation_duration_seconds", []string{"op", "get"}, keys + 7},
			{"roost_store_keys", []string{"role", "primary"}, keys - 20}, // each key once, on its primary
			{"roost_store_keys", []string{"role", "replica"}, keys - 20}, // and once more on its replica (R=2)
			{"roost_members", []string{"status", "alive"}, 9},            // each of 3 nodes sees 3
			{"roost_members", []string{"status", "dead"}, 0},
			{"roost_partitions", []string{"role", "primary"}, 271},
			{"roost_store_evictions_total", nil, 0},
			{"roost_evictions_sent_total", nil, 0}, // no limit reached: no eviction to tell the copies of
			{"roost_evictions_forced_total", nil, 0},
			{"roost_evictions_followed_total", nil, 0},
		} {
			if got := clusterSum(t, scrapes, c.name, c.labels...); got != c.want {
				return fmt.Errorf("%s%v summed over the nodes = %v, want %v", c.name, c.labels, got, c.want)
			}
		}
		if b := clusterSum(t, scrapes, "roost_store_bytes"); b <= 0 {
			return fmt.Errorf("roost_store_bytes = %v", b)
		}
		for i, mf := range scrapes {
			if v := metricValue(t, mf, "roost_node_info", "name", nodes[i].Name(), "id", nodes[i].ID()); v != 1 {
				return fmt.Errorf("roost_node_info of %s = %v", nodes[i].Name(), v)
			}
			if _, ok := mf["go_goroutines"]; !ok {
				return fmt.Errorf("no Go runtime metrics on %s", nodes[i].Name())
			}
		}
		return nil
	})

	// The dashboard's figures gather the same counters from every node.
	code, body := agentDo(t, nodes[1], "GET", "/v1/roost/stats", "", "X-Consul-Token", agentToken)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/roost/stats = %d %s", code, body)
	}
	var stats node.StatsReply
	if err := json.Unmarshal([]byte(body), &stats); err != nil {
		t.Fatal(err)
	}
	var sets, gets uint64
	primary := 0
	for _, s := range stats.Nodes {
		if s.Error != "" {
			t.Fatalf("stats of %s: %s", s.Name, s.Error)
		}
		sets += s.Ops["set"]
		gets += s.Ops["get"]
		primary += s.Primary
	}
	if len(stats.Nodes) != 3 || sets != keys+10+5 || gets != keys+7 || primary != 271 {
		t.Fatalf("stats: %d nodes, %d sets, %d gets, %d primaries; want 3, %d, %d, 271", len(stats.Nodes), sets, gets, primary, keys+15, keys+7)
	}
	if code, _ := agentDo(t, nodes[1], "GET", "/v1/roost/stats", ""); code != http.StatusForbidden {
		t.Fatalf("stats without the token = %d, want 403", code)
	}
	// The help text says what is not there yet.
	resp, err := http.Get("http://" + nodes[0].HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(text), "# HELP roost_replication_lag_seconds") || !strings.Contains(string(text), "99th percentile") {
		t.Fatal("roost_replication_lag_seconds does not say what it measures")
	}
}
