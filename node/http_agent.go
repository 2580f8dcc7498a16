package node

import "net/http"

// agentRoutes registers the consul agent and health API, Roost's members
// API, /metrics and the dashboard. (Being written.)
func (n *Node) agentRoutes(mux *http.ServeMux) {}
