package node

import "net/http"

// kvRoutes registers the consul KV API. (Being written.)
func (n *Node) kvRoutes(mux *http.ServeMux) {}
