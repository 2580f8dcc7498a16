package node

import (
	"net/http"

	"github.com/roostkv/roost/node/ui"
)

// agentRoutes registers the consul agent and health API, Roost's members
// API, /metrics and the dashboard (docs/http.md, "Agent, health, metrics,
// dashboard"). With a token, everything but the health checks, the metrics
// and the dashboard's static files requires it.
func (n *Node) agentRoutes(mux *http.ServeMux) {
	auth := func(h http.HandlerFunc) http.Handler { return n.requireToken(h) }

	// consul's agent API (agent_members.go, agent_cluster.go)
	mux.Handle("GET /v1/agent/self", auth(n.httpAgentSelf)) // agent_self.go
	mux.Handle("GET /v1/agent/members", auth(n.httpAgentMembers))
	mux.Handle("PUT /v1/agent/join/{address}", auth(n.httpAgentJoin))
	mux.Handle("PUT /v1/agent/leave", auth(n.httpAgentLeave))
	mux.Handle("PUT /v1/agent/force-leave/{node}", auth(n.httpAgentForceLeave))
	// consul's status API (agent_self.go): Roost has no leader; see there
	mux.Handle("GET /v1/status/leader", auth(n.httpStatusLeader))
	mux.Handle("GET /v1/status/peers", auth(n.httpStatusPeers))
	// consul's health API: open, like /v1/health, for probes
	mux.HandleFunc("GET /v1/health/state/{state}", n.httpHealthState)

	// Roost's richer view (agent_members.go, agent_stats.go)
	mux.Handle("GET /v1/roost/members", auth(n.httpRoostMembers))
	mux.Handle("PUT /v1/roost/members/{node}/tags", auth(n.httpRoostTags))
	mux.Handle("GET /v1/roost/stats", auth(n.httpRoostStats))
	mux.Handle("GET /v1/roost/ready", auth(n.httpRoostReady))           // ready.go
	mux.Handle("GET /v1/roost/partitions", auth(n.httpRoostPartitions)) // placement.go
	// runtime config and bulk member operations (runtime_config_api.go)
	mux.Handle("GET /v1/roost/config", auth(n.httpConfigGet))
	mux.Handle("PUT /v1/roost/config", auth(n.httpConfigPut))
	mux.Handle("DELETE /v1/roost/config", auth(n.httpConfigDelete))
	mux.Handle("PUT /v1/roost/members/tags", auth(n.httpBulkTags))
	mux.Handle("PUT /v1/roost/members/force-leave", auth(n.httpBulkForceLeave))

	// Prometheus (metrics.go) and the dashboard's static files: open
	mux.Handle("GET /metrics", n.metrics.handler())
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", ui.Handler()))
	mux.HandleFunc("GET /ui", ui.Pointer) // a page that links to /ui/: no redirect (http_paths.go)
}
