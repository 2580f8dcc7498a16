package node

import (
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Prometheus's HTTP service discovery (http_sd_configs) over the catalog:
// GET /v1/roost/sd/<name>?tag=&passing answers the service's instances as
// Prometheus target groups, one per instance, with labels in the shape of
// Prometheus's own consul_sd (__meta_roost_* for __meta_consul_*). It is for
// Prometheus builds without Consul SD (Debian's package disables it), and
// for anything else that reads that format. docs/http.md, "Prometheus".

// sdGroup is one target group of Prometheus's HTTP SD format.
type sdGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// httpServiceSD answers the target groups of the instances of a service.
// Without ?passing every instance is listed (as consul_sd does: a scrape of
// a failing instance is what a monitor wants), with __meta_roost_health.
func (n *Node) httpServiceSD(w http.ResponseWriter, r *http.Request) {
	es, _, ok := n.serviceInstances(w, r)
	if !ok {
		return
	}
	out := make([]sdGroup, 0, len(es))
	for i := range es {
		if g, ok := sdGroupOf(&es[i]); ok {
			out = append(out, g)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// sdGroupOf is an instance as a target group: its address is the service's
// (the node's when the service names none) and its port; an instance with
// no port has no target to scrape and is left out.
func sdGroupOf(se *serviceEntry) (sdGroup, bool) {
	s := &se.Service
	if s.Port <= 0 {
		return sdGroup{}, false
	}
	host := s.Address
	if host == "" {
		host = se.Node.Address
	}
	labels := map[string]string{
		"__meta_roost_node":            se.Node.Node,
		"__meta_roost_address":         se.Node.Address,
		"__meta_roost_dc":              se.Node.Datacenter,
		"__meta_roost_service":         s.Service,
		"__meta_roost_service_id":      s.ID,
		"__meta_roost_service_address": s.Address,
		"__meta_roost_service_port":    strconv.Itoa(s.Port),
		"__meta_roost_health":          aggregate(se.Checks),
		// As consul_sd: the tags joined with commas, one at each end too,
		// so a relabel regex can match ",tag,".
		"__meta_roost_tags": "," + strings.Join(s.Tags, ",") + ",",
	}
	for k, v := range s.Meta {
		labels["__meta_roost_service_metadata_"+labelName(k)] = v
	}
	for k, v := range se.Node.Meta {
		labels["__meta_roost_metadata_"+labelName(k)] = v
	}
	return sdGroup{Targets: []string{net.JoinHostPort(host, strconv.Itoa(s.Port))}, Labels: labels}, true
}

// labelName makes s a valid Prometheus label name suffix: every character
// outside [a-zA-Z0-9_] becomes '_', as Prometheus's own SDs do.
func labelName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}
