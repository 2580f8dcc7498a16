package node

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// The catalog's HTTP API, as consul documents it (docs/http.md, "Service
// catalog"). Agent endpoints act on the services registered on this node;
// catalog and health endpoints read the whole cluster's catalog. Every GET
// takes consul's blocking parameters (?index, ?wait) and answers with
// X-Consul-Index, the catalog's index: the highest version of any catalog
// key, deletes included, so a blocking read wakes on any change of the
// catalog made through any node.

// catalogRoutes registers the catalog API. /v1/health/* needs no token, as
// the rest of consul's health API here.
func (n *Node) catalogRoutes(mux *http.ServeMux) {
	auth := func(h http.HandlerFunc) http.Handler { return n.requireToken(h) }
	mux.Handle("PUT /v1/agent/service/register", auth(n.httpServiceRegister))
	mux.Handle("PUT /v1/agent/service/deregister/{id}", auth(n.httpServiceDeregister))
	for _, verb := range []string{"pass", "warn", "fail", "update"} {
		mux.Handle("PUT /v1/agent/check/"+verb+"/{id}", auth(n.httpCheckUpdate))
	}
	mux.Handle("GET /v1/agent/services", auth(n.httpAgentServices))
	mux.Handle("GET /v1/agent/checks", auth(n.httpAgentChecks))
	mux.Handle("GET /v1/catalog/services", auth(n.httpCatalogServices))
	mux.Handle("GET /v1/catalog/service/{name}", auth(n.httpCatalogService))
	mux.HandleFunc("GET /v1/health/service/{name}", n.httpHealthService)
	mux.HandleFunc("GET /v1/health/checks/{name}", n.httpHealthChecks)
	mux.Handle("GET /v1/roost/sd/{name}", auth(n.httpServiceSD)) // catalog_sd.go
}

// catalogSyncWait bounds how long a register or deregister waits for its
// catalog write.
const catalogSyncWait = 5 * time.Second

func (n *Node) httpServiceRegister(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistration))
	if err != nil {
		httpError(w, errTooLarge("registration is over %d bytes", maxRegistration))
		return
	}
	var reg svcRegistration
	if err := json.Unmarshal(body, &reg); err != nil {
		httpError(w, errBadRequest("bad registration: %v", err))
		return
	}
	ls, err := newLocalService(&reg, time.Now())
	if err == nil {
		err = n.agent.register(ls)
	}
	if err != nil {
		httpError(w, err)
		return
	}
	n.answerSync(w, r, ls.svc.ID)
}

func (n *Node) httpServiceDeregister(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !n.agent.deregister(id) {
		httpError(w, &apiError{code: http.StatusNotFound, msg: "Unknown service ID " + strconv.Quote(id) + ": it is not registered on this node (deregister it on the node it was registered on)"})
		return
	}
	n.answerSync(w, r, id)
}

// answerSync writes service id's record and answers 200 once the catalog
// holds it, or 503 when the write failed: the agent keeps the change and
// retries it until it lands.
func (n *Node) answerSync(w http.ResponseWriter, r *http.Request, id string) {
	ctx, cancel := context.WithTimeout(r.Context(), catalogSyncWait)
	defer cancel()
	if err := n.syncService(ctx, id); err != nil {
		httpError(w, &apiError{code: http.StatusServiceUnavailable, msg: "registered on this node, but not in the catalog yet (the node retries): " + err.Error()})
		return
	}
	w.WriteHeader(http.StatusOK)
}

// httpCheckUpdate is consul's /v1/agent/check/pass|warn|fail/<id>?note= and
// /v1/agent/check/update/<id> with {"Status", "Output"}.
func (n *Node) httpCheckUpdate(w http.ResponseWriter, r *http.Request) {
	status, output := "", r.URL.Query().Get("note")
	switch verb := r.Pattern[len("PUT /v1/agent/check/"):]; verb[:4] {
	case "pass":
		status = checkPassing
	case "warn":
		status = checkWarning
	case "fail":
		status = checkCritical
	default: // update
		var u struct{ Status, Output string }
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistration))
		if err == nil && len(body) > 0 {
			err = json.Unmarshal(body, &u)
		}
		if err != nil {
			httpError(w, errBadRequest("bad check update: %v", err))
			return
		}
		if u.Status != checkPassing && u.Status != checkWarning && u.Status != checkCritical {
			httpError(w, errBadRequest("status %q is not passing, warning or critical", u.Status))
			return
		}
		status, output = u.Status, u.Output
	}
	id, err := n.agent.updateCheck(r.PathValue("id"), status, output, time.Now())
	if err != nil {
		httpError(w, err)
		return
	}
	if id == "" {
		w.WriteHeader(http.StatusOK) // nothing the catalog shows changed
		return
	}
	n.answerSync(w, r, id)
}

// catalogRead reads the catalog for a GET, blocking as its parameters say,
// and sets consul's headers. On error it has answered.
func (n *Node) catalogRead(w http.ResponseWriter, r *http.Request) ([]catalogEntry, bool) {
	b, err := parseBlocking(r.URL.Query())
	if err != nil {
		httpError(w, err)
		return nil, false
	}
	all, index, err := n.readCatalog(r.Context(), b)
	if err != nil {
		if r.Context().Err() == nil {
			httpError(w, err)
		}
		return nil, false
	}
	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(max(index, 1), 10))
	h.Set("X-Consul-LastContact", "0")
	h.Set("X-Consul-KnownLeader", "true")
	return all, true
}

func (n *Node) httpAgentServices(w http.ResponseWriter, r *http.Request) {
	if _, ok := n.catalogRead(w, r); ok {
		writeJSON(w, http.StatusOK, n.agent.agentServices(n.cfg.datacenter()))
	}
}

func (n *Node) httpAgentChecks(w http.ResponseWriter, r *http.Request) {
	if _, ok := n.catalogRead(w, r); ok {
		writeJSON(w, http.StatusOK, n.agent.agentChecks(n.cfg.Name))
	}
}

// httpCatalogServices is consul's /v1/catalog/services: every service name
// with the union of its instances' tags.
func (n *Node) httpCatalogServices(w http.ResponseWriter, r *http.Request) {
	all, ok := n.catalogRead(w, r)
	if !ok {
		return
	}
	out := map[string][]string{}
	for _, e := range all {
		name := e.rec.Service.Service
		tags := out[name]
		if tags == nil {
			tags = []string{}
		}
		for _, t := range e.rec.Service.Tags {
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
		slices.Sort(tags)
		out[name] = tags
	}
	writeJSON(w, http.StatusOK, out)
}

// httpCatalogService is consul's /v1/catalog/service/<name>?tag=.
func (n *Node) httpCatalogService(w http.ResponseWriter, r *http.Request) {
	all, ok := n.catalogRead(w, r)
	if !ok {
		return
	}
	es := healthEntries(all, healthFilter{name: r.PathValue("name"), tags: r.URL.Query()["tag"]})
	out := make([]catalogService, 0, len(es))
	for _, se := range es {
		for i := range all {
			if e := &all[i]; e.rec.Node == se.Node.Node && e.rec.Service.ID == se.Service.ID {
				out = append(out, e.catalogService())
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// httpHealthService is consul's /v1/health/service/<name>?tag=&passing:
// with ?passing, the instances whose checks all pass, in the balanced
// order (catalog.go, "Balancing"); else every instance, sorted.
func (n *Node) httpHealthService(w http.ResponseWriter, r *http.Request) {
	es, passing, ok := n.serviceInstances(w, r)
	if !ok {
		return
	}
	if passing {
		balance(es, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())))
	}
	writeJSON(w, http.StatusOK, es)
}

// serviceInstances reads the instances of the service the path names, as
// ?tag= and ?passing select them (passing reports the latter), sorted; on
// error it has answered.
func (n *Node) serviceInstances(w http.ResponseWriter, r *http.Request) (es []serviceEntry, passing, ok bool) {
	q := r.URL.Query()
	passing, err := queryFlag(q, "passing")
	if err != nil {
		httpError(w, err)
		return nil, false, false
	}
	all, ok := n.catalogRead(w, r)
	if !ok {
		return nil, false, false
	}
	return healthEntries(all, healthFilter{name: r.PathValue("name"), tags: q["tag"], passing: passing}), passing, true
}

// httpHealthChecks is consul's /v1/health/checks/<service>: the checks of
// every instance of the service.
func (n *Node) httpHealthChecks(w http.ResponseWriter, r *http.Request) {
	all, ok := n.catalogRead(w, r)
	if !ok {
		return
	}
	out := []healthCheck{}
	for _, se := range healthEntries(all, healthFilter{name: r.PathValue("name")}) {
		out = append(out, se.Checks[1:]...) // the service's own, not serfHealth
	}
	writeJSON(w, http.StatusOK, out)
}

// queryFlag reads a boolean parameter as consul does: present and empty,
// or a value strconv.ParseBool takes.
func queryFlag(q map[string][]string, name string) (bool, error) {
	v, ok := q[name]
	if !ok {
		return false, nil
	}
	if len(v) == 0 || v[0] == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v[0])
	if err != nil {
		return false, errBadRequest("bad ?%s=%s: want true or false", name, v[0])
	}
	return b, nil
}
