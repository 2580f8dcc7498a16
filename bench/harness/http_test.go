package harness

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// httpConfig is a short run of the http path over a small keyspace, roost
// alone.
func httpConfig() Config {
	c := shortConfig()
	c.Path = PathHTTP
	c.Keys = 200
	c.Compare = false
	return c
}

// TestRunHTTP runs the http path against a node the harness starts, for
// gets (with the baselines, which stay on NATS) and for sets.
func TestRunHTTP(t *testing.T) {
	tests := []struct {
		workload string
		compare  bool
		rows     string
	}{
		{WorkloadGet, true, "echo,roost,kv"},
		{WorkloadSet, false, "roost"},
	}
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			cfg := httpConfig()
			cfg.Workload, cfg.Compare = tt.workload, tt.compare
			rep, _ := run(t, cfg)

			var names []string
			for _, r := range rep.Rows {
				names = append(names, r.Name)
				checkRow(t, rep, r.Name, 3)
			}
			if got := strings.Join(names, ","); got != tt.rows {
				t.Fatalf("rows %s, want %s", got, tt.rows)
			}
			if s := rep.Row(NameRoost).Server; !strings.HasPrefix(s, "http://127.0.0.1:") {
				t.Errorf("roost row went to %q, want the node's HTTP API on loopback", s)
			}
			if echo := rep.Row(NameEcho); echo != nil && !strings.HasPrefix(echo.Server, "nats://") {
				t.Errorf("echo row went to %q, want NATS", echo.Server)
			}
			if rep.Settings.Path != PathHTTP || rep.Settings.Batching != "off" {
				t.Errorf("settings path %s, batching %s: want http, off", rep.Settings.Path, rep.Settings.Batching)
			}
		})
	}
}

// TestRunHTTPAgainstServer benches a running node's HTTP API, named by
// --http-addr, with its token, through a proxy that counts what arrives:
// every operation the report counts was an HTTP request.
func TestRunHTTPAgainstServer(t *testing.T) {
	n := startNode(t, "s3cret")
	api, err := url.Parse(n.HTTPURL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(api)
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	rp.Transport = tr
	t.Cleanup(tr.CloseIdleConnections)
	var gets, puts atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet:
			gets.Add(1)
		case http.MethodPut:
			puts.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	cfg := httpConfig()
	cfg.Server, cfg.HTTPAddr, cfg.Token = n.ClientURL(), proxy.Listener.Addr().String(), "s3cret"
	cfg.Workload, cfg.GetRatio = WorkloadMixed, 0.5
	rep, _ := run(t, cfg)
	row := checkRow(t, rep, NameRoost, 3)
	if row.Server != "http://"+cfg.HTTPAddr {
		t.Errorf("roost row went to %q, want http://%s", row.Server, cfg.HTTPAddr)
	}
	if g, p := gets.Load(), puts.Load(); g == 0 || p == 0 || g+p < row.Ops {
		t.Errorf("proxy saw %d gets and %d puts, want both and at least the %d operations counted", g, p, row.Ops)
	}

	cfg.Token = "wrong"
	tg, err := httpPath{}.Open(Endpoint{HTTP: cfg.HTTPAddr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	if err := tg.Get("bench-0"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("Get with a wrong token: %v, want 403", err)
	}
}
