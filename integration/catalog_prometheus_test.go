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
)

// TestCatalogPrometheus: a real Prometheus (Debian's package), given
// consul_sd_configs pointed at one Roost node's HTTP API, discovers every
// node through the "roost" service each node registers for itself, and
// scrapes their /metrics: its /api/v1/targets shows them up.
func TestCatalogPrometheus(t *testing.T) {
	t.Parallel()
	prom := prometheusBinary(t)
	if bin, err := os.ReadFile(prom); err == nil && !bytes.Contains(bin, []byte("__meta_consul_service")) {
		// Debian's package (bookworm's 2.42) is built without Consul SD.
		skipPrometheus(t, prom+" is built without consul_sd_configs (Debian's package disables Consul SD); point ROOST_PROMETHEUS at an upstream build")
	}
	nodes := startCluster(t, 2, nil)

	dir := t.TempDir()
	promAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: roost
    consul_sd_configs:
      - server: %q
        services: [roost]
        refresh_interval: 1s
`, nodes[0].HTTPAddr())
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr, "--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	noConsulSD := func() {
		// Debian's package (bookworm's 2.42) is built without Consul
		// service discovery: it refuses the configuration at once.
		if strings.Contains(logs.String(), "consul_sd_configs not found") {
			skipPrometheus(t, prom+" is built without consul_sd_configs (Debian's package disables Consul SD); point ROOST_PROMETHEUS at an upstream build")
		}
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() && !t.Skipped() {
			t.Logf("prometheus's log:\n%s", logs.String())
		}
	})

	var want []string
	for _, n := range nodes {
		want = append(want, "http://"+n.HTTPAddr()+"/metrics")
	}
	slices.Sort(want)
	eventually(t, 15*time.Second, func() error {
		select {
		case <-done:
			noConsulSD()
			return fmt.Errorf("prometheus exited: %s", logs.String())
		default:
		}
		resp, err := http.Get("http://" + promAddr + "/api/v1/targets?state=active")
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
			seen = append(seen, fmt.Sprintf("%s %s %s (node %s)", tg.ScrapeURL, tg.Health, tg.LastError, tg.DiscoveredLabels["__meta_consul_node"]))
			if tg.Health == "up" && strings.HasPrefix(tg.DiscoveredLabels["__meta_consul_node"], "n") {
				up = append(up, tg.ScrapeURL)
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
func prometheusBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ROOST_PROMETHEUS"); p != "" {
		return p
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		skipPrometheus(t, "no prometheus binary found (install it: apt-get install -y prometheus, or set ROOST_PROMETHEUS)")
	}
	return p
}

// skipPrometheus skips the test for why, unless ROOST_REQUIRE_PROMETHEUS is
// set (.ci/run sets it once it has a Prometheus with Consul SD): then the
// test fails.
func skipPrometheus(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("ROOST_REQUIRE_PROMETHEUS") != "" {
		t.Fatal(why + ", and ROOST_REQUIRE_PROMETHEUS is set")
	}
	t.Skip(why + "; consul_sd_configs against Roost was not tried")
}
