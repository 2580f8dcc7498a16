package node

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// The HTTP API (docs/http.md): health and status here, consul KV in
// http_kv.go, agent, health, Roost members, metrics and the dashboard in
// http_agent.go.

func (n *Node) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", n.httpHealth)
	mux.Handle("GET /v1/status", n.requireToken(http.HandlerFunc(n.httpStatus)))
	n.kvRoutes(mux)        // http_kv.go: consul KV
	n.counterRoutes(mux)   // ops_incr.go: /v1/roost/incr and /v1/roost/touch
	n.agentRoutes(mux)     // http_agent.go: consul agent and health, Roost members, metrics, dashboard
	n.hotKeyRoutes(mux)    // hotkeys.go: the keys read most
	n.catalogRoutes(mux)   // catalog_http.go: consul's service catalog
	return guardPaths(mux) // http_paths.go: no path is cleaned, none redirected
}

// httpHealth answers whether the node serves. No token needed, so load
// balancers and orchestrators can probe it.
func (n *Node) httpHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "passing", "node": n.cfg.Name, "id": n.id})
}

func (n *Node) httpStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.Status())
}

// requireToken lets a request through only with the node's token, when
// one is configured. As consul reads it: the ?token= query parameter
// (older consul clients and hand-made URLs send it so), else the
// X-Consul-Token header, else Authorization: Bearer.
func (n *Node) requireToken(next http.Handler) http.Handler {
	if n.cfg.Token == "" {
		return next
	}
	want := []byte(n.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.URL.Query().Get("token")
		if got == "" {
			got = r.Header.Get("X-Consul-Token")
		}
		if got == "" {
			got, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			http.Error(w, "permission denied: missing or wrong token", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
