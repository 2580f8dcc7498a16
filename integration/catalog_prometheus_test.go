package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roostkv/roost/internal/testkit"
	"github.com/roostkv/roost/node"
)

// TestCatalogPrometheus: a real Prometheus, given consul_sd_configs pointed
// at one Roost node's HTTP API, discovers every node through the "roost"
// service each node registers for itself, and scrapes their /metrics: its
// /api/v1/targets shows them up. Debian's package has no Consul SD (below);
// TestCatalogPrometheusHTTPSD runs it through http_sd_configs instead.
func TestCatalogPrometheus(t *testing.T) {
	t.Parallel()
	prom := prometheusBinary(t, "ROOST_REQUIRE_PROMETHEUS")
	if bin, err := os.ReadFile(prom); err == nil && !bytes.Contains(bin, []byte("__meta_consul_service")) {
		// Debian's package (bookworm's 2.42) is built without Consul SD.
		skipPrometheus(t, "ROOST_REQUIRE_PROMETHEUS", prom+" is built without consul_sd_configs (Debian's package disables Consul SD); point ROOST_PROMETHEUS at an upstream build")
	}
	nodes := startCluster(t, 2, nil)
	p := startPrometheus(t, prom, fmt.Sprintf(`    consul_sd_configs:
      - server: %q
        services: [roost]
        refresh_interval: 1s
`, nodes[0].HTTPAddr()))
	p.waitUp(t, nodes, "__meta_consul_node", func() {
		// Debian's package refuses the configuration at once.
		if strings.Contains(p.logs.String(), "consul_sd_configs not found") {
			skipPrometheus(t, "ROOST_REQUIRE_PROMETHEUS", prom+" is built without consul_sd_configs (Debian's package disables Consul SD); point ROOST_PROMETHEUS at an upstream build")
		}
	})
}

// TestCatalogPrometheusHTTPSD: the same discovery through Prometheus's
// http_sd_configs and Roost's /v1/roost/sd/<name>, which any Prometheus
// build has, Debian's included; the discovered labels are Roost's.
func TestCatalogPrometheusHTTPSD(t *testing.T) {
	t.Parallel()
	prom := prometheusBinary(t, "ROOST_REQUIRE_PROMETHEUS_HTTP")
	nodes := startCluster(t, 2, nil)
	p := startPrometheus(t, prom, fmt.Sprintf(`    http_sd_configs:
      - url: "http://%s/v1/roost/sd/roost?passing"
        refresh_interval: 1s
`, nodes[1].HTTPAddr()))
	p.waitUp(t, nodes, "__meta_roost_node", func() {})
}

// prometheusRun is a Prometheus process started by a test.
type prometheusRun struct {
	addr string
	logs *testkit.LogBuffer
	done chan struct{}
}

// startPrometheus runs prom with one scrape job, "roost", whose discovery is
// sd (YAML, indented for the job), scraping every second; it is killed at
// the test's end, and its log shown when the test failed.
func startPrometheus(t *testing.T, prom, sd string) *prometheusRun {
	t.Helper()
	dir := t.TempDir()
	p := &prometheusRun{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), logs: &testkit.LogBuffer{}, done: make(chan struct{})}
	config := `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: roost
` + sd
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+p.addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() && !t.Skipped() {
			t.Logf("prometheus's log:\n%s", p.logs.String())
		}
	})
	return p
}

// waitUp waits until Prometheus's active targets are exactly every node's
// /metrics, up, each discovered with a node label (nodeLabel) naming a test
// node. exited runs first when Prometheus has exited.
func (p *prometheusRun) waitUp(t *testing.T, nodes []*node.Node, nodeLabel string, exited func()) {
	t.Helper()
	var want []string
	for _, n := range nodes {
		want = append(want, "http://"+n.HTTPAddr()+"/metrics "+n.Name())
	}
	slices.Sort(want)
	eventually(t, 15*time.Second, func() error {
		select {
		case <-p.done:
			exited()
			return fmt.Errorf("prometheus exited: %s", p.logs.String())
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/api/v1/targets?state=active")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var body struct {
			Data struct {
				ActiveTargets []struct {
					ScrapeURL        string            `json:"scrapeUrl"`
					Health           string            `json:"health"`
					LastError        string            `json:"lastError"`
					DiscoveredLabels map[string]string `json:"discoveredLabels"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return err
		}
		var up, seen []string
		for _, tg := range body.Data.ActiveTargets {
			seen = append(seen, fmt.Sprintf("%s %s %s (node %s)", tg.ScrapeURL, tg.Health, tg.LastError, tg.DiscoveredLabels[nodeLabel]))
			if tg.Health == "up" {
				up = append(up, tg.ScrapeURL+" "+tg.DiscoveredLabels[nodeLabel])
			}
		}
		slices.Sort(up)
		if !slices.Equal(up, want) {
			return fmt.Errorf("targets up %v, want %v; all: %v", up, want, seen)
		}
		return nil
	})
}

// prometheusBinary is the Prometheus to run: $ROOST_PROMETHEUS, else
// prometheus on the PATH (Debian's package, which .ci/run installs).
func prometheusBinary(t *testing.T, require string) string {
	t.Helper()
	if p := os.Getenv("ROOST_PROMETHEUS"); p != "" {
		return p
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		skipPrometheus(t, require, "no prometheus binary found (install it: apt-get install -y prometheus, or set ROOST_PROMETHEUS)")
	}
	return p
}

// skipPrometheus skips the test for why, unless the environment variable
// require is set (.ci/run sets ROOST_REQUIRE_PROMETHEUS_HTTP once it has a
// Prometheus, and ROOST_REQUIRE_PROMETHEUS once it has one with Consul SD):
// then the test fails.
func skipPrometheus(t *testing.T, require, why string) {
	t.Helper()
	if os.Getenv(require) != "" {
		t.Fatal(why + ", and " + require + " is set")
	}
	t.Skip(why + "; Prometheus against Roost was not tried")
}
