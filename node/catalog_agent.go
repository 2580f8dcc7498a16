package node

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// The agent side of the catalog: the services registered on this node, in
// memory, with their checks' timers. The agent owns its records: it writes
// each one whole to the catalog (catalog_store.go) whenever it changes — a
// registration, a deregistration, a check whose status or output changed —
// and never on a TTL pass that changes nothing, so a healthy service costs
// no write. A write that fails (no primary for a moment) stays due and is
// retried by the loop (catalog_loop.go) until it lands.

// Limits of registrations.
const (
	maxRegistration  = 64 << 10         // bytes of a registration's JSON
	minCheckInterval = time.Second      // an HTTP check polls at most this often, as consul clamps it
	defaultCheckWait = 10 * time.Second // an HTTP check's timeout when none is given, as consul's
	maxCatalogName   = 512              // bytes of a service ID or name, or a check ID: they are parts of keys and paths
)

// svcRegistration is consul's AgentServiceRegistration, as decoded.
type svcRegistration struct {
	Kind              string
	ID                string
	Name              string
	Tags              []string
	Port              int
	Address           string
	Meta              map[string]string
	Weights           *agentWeights
	EnableTagOverride bool
	Check             *checkRegistration
	Checks            []*checkRegistration
}

// checkRegistration is consul's AgentServiceCheck, as decoded. Roost runs
// TTL and HTTP checks; the other kinds are refused.
type checkRegistration struct {
	CheckID                        string
	Name                           string
	Status                         string
	Notes                          string
	TTL                            string
	HTTP                           string
	Method                         string
	Header                         map[string][]string
	Interval                       string
	Timeout                        string
	DeregisterCriticalServiceAfter string
	ScriptArgs                     []string
	TCP                            string
	GRPC                           string
	UDP                            string
	H2PING                         string
	DockerContainerID              string
	AliasService                   string
}

// localService is a service registered on this node.
type localService struct {
	svc      agentService
	checks   []*localCheck
	internal bool // the node's own "roost" service: not listed by /v1/agent/services, not deregistered by users
}

// localCheck is one check of a local service and its timers.
type localCheck struct {
	state      healthCheck         // what the catalog shows
	ttl        time.Duration       // TTL check: critical when no update came for this long
	deadline   time.Time           // TTL check: when it lapses
	url        string              // HTTP check: what it polls
	method     string              // HTTP check: GET unless given
	header     map[string][]string // HTTP check: request headers
	interval   time.Duration       // HTTP check: how often
	timeout    time.Duration       // HTTP check: how long a poll may take
	nextPoll   time.Time           // HTTP check: when it polls next
	polling    bool                // HTTP check: a poll is under way
	deregAfter time.Duration       // deregister the service once critical this long; 0 = never
	critical   time.Time           // since when it is critical; zero when it is not
}

// catalogAgent is the agent state of a node: its services and which of
// them the catalog does not hold as they are yet.
type catalogAgent struct {
	mu       sync.Mutex
	services map[string]*localService // by service ID
	checks   map[string]string        // check ID -> service ID
	due      map[string]uint64        // service ID -> change number the catalog lacks (a deleted service: absent from services)
	changes  uint64                   // numbers the changes

	writeMu sync.Mutex    // one catalog write at a time, so that the last written is the latest
	kick    chan struct{} // wakes the loop: something is due

	ctx     context.Context    // ends when the agent stops: its writes and HTTP polls give up
	cancel  context.CancelFunc // ends ctx
	polls   sync.WaitGroup     // HTTP checks being polled
	done    chan struct{}      // closed when the loop has ended
	running bool               // the loop was started (startCatalog)
	pickSub *nats.Subscription // the pick subject (catalog_pick.go)
	cache   catalogCache       // the last read of the catalog (catalog_cache.go)
}

func newCatalogAgent() *catalogAgent {
	ctx, cancel := context.WithCancel(context.Background())
	return &catalogAgent{
		services: map[string]*localService{}, checks: map[string]string{}, due: map[string]uint64{},
		kick: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
}

// changed marks service id due for a write. Callers hold a.mu.
func (a *catalogAgent) changed(id string) {
	a.changes++
	a.due[id] = a.changes
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// newLocalService validates a registration and builds the service, its
// checks starting at now.
func newLocalService(reg *svcRegistration, now time.Time) (*localService, error) {
	if reg.Kind != "" {
		return nil, errBadRequest("service kind %q: Roost's catalog holds typical services only", reg.Kind)
	}
	if reg.Name == "" {
		return nil, errBadRequest("missing service name")
	}
	id := reg.ID
	if id == "" {
		id = reg.Name
	}
	if err := checkName("service ID", id); err != nil {
		return nil, err
	}
	if err := checkName("service name", reg.Name); err != nil {
		return nil, err
	}
	if reg.Port < 0 || reg.Port > 65535 {
		return nil, errBadRequest("port %d is not between 0 and 65535", reg.Port)
	}
	w := agentWeights{Passing: 1, Warning: 1}
	if reg.Weights != nil {
		if reg.Weights.Passing < 1 || reg.Weights.Warning < 0 {
			return nil, errBadRequest("weights: Passing must be at least 1 and Warning at least 0, got %d and %d", reg.Weights.Passing, reg.Weights.Warning)
		}
		w = *reg.Weights
	}
	ls := &localService{svc: agentService{
		ID: id, Service: reg.Name, Tags: slices.Clone(reg.Tags), Meta: maps.Clone(reg.Meta),
		Port: reg.Port, Address: reg.Address, Weights: w, EnableTagOverride: reg.EnableTagOverride,
	}}
	if ls.svc.Tags == nil {
		ls.svc.Tags = []string{}
	}
	if ls.svc.Meta == nil {
		ls.svc.Meta = map[string]string{}
	}
	regs := reg.Checks
	if reg.Check != nil {
		regs = append([]*checkRegistration{reg.Check}, regs...)
	}
	for i, cr := range regs {
		if cr == nil {
			continue
		}
		checkID := cr.CheckID
		if checkID == "" {
			checkID = "service:" + id
			if len(regs) > 1 {
				checkID = fmt.Sprintf("service:%s:%d", id, i+1)
			}
		}
		c, err := newLocalCheck(cr, checkID, &ls.svc, now)
		if err != nil {
			return nil, err
		}
		ls.checks = append(ls.checks, c)
	}
	return ls, nil
}

// checkName refuses an empty name, one with "/" (the catalog's keys and the
// agent's paths are split at it) or with control characters.
func checkName(what, s string) error {
	if s == "" {
		return errBadRequest("empty %s", what)
	}
	if len(s) > maxCatalogName {
		return errBadRequest("%s of %d bytes is over the limit of %d", what, len(s), maxCatalogName)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r == '/' || r < ' ' || r == 0x7f }) {
		return errBadRequest("%s %q: it may not hold \"/\" or control characters", what, s)
	}
	return nil
}

// newLocalCheck validates a check of service svc.
func newLocalCheck(cr *checkRegistration, id string, svc *agentService, now time.Time) (*localCheck, error) {
	if err := checkName("check ID", id); err != nil {
		return nil, err
	}
	if len(cr.ScriptArgs) > 0 || cr.TCP != "" || cr.GRPC != "" || cr.UDP != "" || cr.H2PING != "" || cr.DockerContainerID != "" || cr.AliasService != "" {
		return nil, errBadRequest("check %q: Roost runs TTL and HTTP checks only", id)
	}
	if (cr.TTL == "") == (cr.HTTP == "") {
		return nil, errBadRequest("check %q: give either TTL or HTTP (with Interval)", id)
	}
	c := &localCheck{state: healthCheck{
		CheckID: id, Name: cr.Name, Notes: cr.Notes, Status: checkCritical,
		ServiceID: svc.ID, ServiceName: svc.Service, ServiceTags: []string{},
	}}
	if c.state.Name == "" {
		c.state.Name = fmt.Sprintf("Service '%s' check", svc.Service)
	}
	switch cr.Status {
	case "":
	case checkPassing, checkWarning, checkCritical:
		c.state.Status = cr.Status
	default:
		return nil, errBadRequest("check %q: status %q is not passing, warning or critical", id, cr.Status)
	}
	var err error
	if cr.DeregisterCriticalServiceAfter != "" {
		if c.deregAfter, err = positiveDuration("DeregisterCriticalServiceAfter", cr.DeregisterCriticalServiceAfter); err != nil {
			return nil, errBadRequest("check %q: %v", id, err)
		}
		c.state.Definition.DeregisterCriticalServiceAfter = c.deregAfter.String()
	}
	if cr.TTL != "" {
		if c.ttl, err = positiveDuration("TTL", cr.TTL); err != nil {
			return nil, errBadRequest("check %q: %v", id, err)
		}
		c.state.Type, c.state.Definition.TTL = "ttl", c.ttl.String()
		c.deadline = now.Add(c.ttl)
	} else {
		u, perr := url.Parse(cr.HTTP)
		if perr != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errBadRequest("check %q: HTTP %q is not an http:// or https:// URL", id, cr.HTTP)
		}
		if c.interval, err = positiveDuration("Interval", cr.Interval); err != nil {
			return nil, errBadRequest("check %q: an HTTP check needs an Interval: %v", id, err)
		}
		c.interval = max(c.interval, minCheckInterval)
		c.timeout = defaultCheckWait
		if cr.Timeout != "" {
			if c.timeout, err = positiveDuration("Timeout", cr.Timeout); err != nil {
				return nil, errBadRequest("check %q: %v", id, err)
			}
		}
		c.url, c.method, c.header = cr.HTTP, cmpOr(strings.ToUpper(cr.Method), "GET"), cr.Header
		c.state.Type = "http"
		c.state.Definition.HTTP, c.state.Definition.Method = c.url, c.method
		c.state.Definition.Interval, c.state.Definition.Timeout = c.interval.String(), c.timeout.String()
		c.nextPoll = now // at once, as consul does
	}
	if c.state.Status == checkCritical {
		c.critical = now
	}
	return c, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// positiveDuration parses a consul duration ("10s", "1m").
func positiveDuration(what, s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s %q is not a positive duration like 10s", what, s)
	}
	return d, nil
}

// register adds or replaces a service (consul's register replaces one of
// the same ID). A check ID already used by another service is refused.
func (a *catalogAgent) register(ls *localService) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.services[ls.svc.ID]; old != nil && old.internal {
		return errBadRequest("service ID %q is the node's own service", ls.svc.ID)
	}
	for _, c := range ls.checks {
		if owner, ok := a.checks[c.state.CheckID]; ok && owner != ls.svc.ID {
			return errBadRequest("check ID %q already belongs to service %q", c.state.CheckID, owner)
		}
	}
	a.dropLocked(ls.svc.ID)
	a.services[ls.svc.ID] = ls
	for _, c := range ls.checks {
		a.checks[c.state.CheckID] = ls.svc.ID
	}
	a.changed(ls.svc.ID)
	return nil
}

// deregister removes a service; false when there is none of that ID.
func (a *catalogAgent) deregister(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	ls := a.services[id]
	if ls == nil || ls.internal {
		return false
	}
	a.dropLocked(id)
	a.changed(id)
	return true
}

// dropLocked forgets service id and its checks. Callers hold a.mu.
func (a *catalogAgent) dropLocked(id string) {
	if ls := a.services[id]; ls != nil {
		for _, c := range ls.checks {
			delete(a.checks, c.state.CheckID)
		}
		delete(a.services, id)
	}
}

// updateCheck sets a TTL check's status and output, as consul's
// /v1/agent/check/pass|warn|fail|update do, and restarts its TTL. It
// returns the ID of the service whose record changed ("" when nothing
// did but the timer).
func (a *catalogAgent) updateCheck(checkID, status, output string, now time.Time) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, ok := a.checks[checkID]
	if !ok {
		return "", &apiError{code: 404, msg: fmt.Sprintf("unknown check ID %q: register it with its service first", checkID)}
	}
	ls := a.services[id]
	var c *localCheck
	for _, lc := range ls.checks {
		if lc.state.CheckID == checkID {
			c = lc
		}
	}
	if c.ttl == 0 {
		return "", errBadRequest("check %q is an HTTP check: its node polls it; only TTL checks are updated", checkID)
	}
	c.deadline = now.Add(c.ttl)
	if !c.set(status, output, now) {
		return "", nil
	}
	a.changed(id)
	return id, nil
}

// set gives c a status and output; false when neither changed.
func (c *localCheck) set(status, output string, now time.Time) bool {
	if c.state.Status == status && c.state.Output == output {
		return false
	}
	if status == checkCritical && c.state.Status != checkCritical {
		c.critical = now
	} else if status != checkCritical {
		c.critical = time.Time{}
	}
	c.state.Status, c.state.Output = status, output
	return true
}

// expire is the agent's clock step at now: TTL checks whose TTL lapsed go
// critical, and services critical for longer than their
// DeregisterCriticalServiceAfter are deregistered. It returns the IDs of the
// services it changed and of those it removed, sorted.
func (a *catalogAgent) expire(now time.Time) (changed, removed []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, ls := range a.services {
		touched := false
		for _, c := range ls.checks {
			if c.ttl > 0 && !now.Before(c.deadline) && c.state.Status != checkCritical {
				touched = c.set(checkCritical, fmt.Sprintf("TTL expired (no update for %s)", c.ttl), now) || touched
			}
		}
		for _, c := range ls.checks {
			if c.deregAfter > 0 && !c.critical.IsZero() && now.Sub(c.critical) >= c.deregAfter {
				a.dropLocked(id)
				a.changed(id)
				removed = append(removed, id)
				touched = false
				break
			}
		}
		if touched {
			a.changed(id)
			changed = append(changed, id)
		}
	}
	slices.Sort(changed)
	slices.Sort(removed)
	return changed, removed
}

// record is service id's catalog record now, nil when it is not registered.
func (a *catalogAgent) record(id, node, nodeID string) *svcRecord {
	a.mu.Lock()
	defer a.mu.Unlock()
	ls := a.services[id]
	if ls == nil {
		return nil
	}
	rec := &svcRecord{Node: node, NodeID: nodeID, Service: ls.svc, Checks: make([]healthCheck, len(ls.checks))}
	for i, c := range ls.checks {
		rec.Checks[i] = c.state
		rec.Checks[i].Node = node
	}
	return rec
}

// dueNow lists the services whose records the catalog lacks, with their
// change numbers.
func (a *catalogAgent) dueNow() map[string]uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.due)
}

// written records that change number seq of service id reached the
// catalog: it is no longer due unless it changed again meanwhile.
func (a *catalogAgent) written(id string, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.due[id] == seq {
		delete(a.due, id)
	}
}

// sync writes service id's record (or its deletion) to the catalog, unless
// it is not due. Writes are one at a time, each of the state when it
// starts, so the catalog ends with the latest.
func (n *Node) syncService(ctx context.Context, id string) error {
	a := n.agent
	a.writeMu.Lock()
	defer a.writeMu.Unlock()
	a.mu.Lock()
	seq, due := a.due[id]
	a.mu.Unlock()
	if !due {
		return nil
	}
	w := reservedWrite{key: svcKey(n.cfg.Name, id), del: true}
	if rec := a.record(id, n.cfg.Name, n.id); rec != nil {
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if int64(len(data)) > n.cfg.MaxValue {
			return errTooLarge("the service's record is %d bytes, over --max-value %d", len(data), n.cfg.MaxValue)
		}
		w = reservedWrite{key: w.key, value: data}
	}
	if err := n.writeReserved(ctx, w); err != nil {
		return err
	}
	a.cache.drop() // read your own write here, feed or not
	a.written(id, seq)
	return nil
}

// agentServices is consul's /v1/agent/services: the services registered
// here, by ID.
func (a *catalogAgent) agentServices(dc string) map[string]agentService {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]agentService{}
	for id, ls := range a.services {
		if ls.internal {
			continue
		}
		s := ls.svc
		s.Datacenter = dc
		out[id] = s
	}
	return out
}

// agentChecks is consul's /v1/agent/checks: the checks of the services
// registered here, by check ID.
func (a *catalogAgent) agentChecks(node string) map[string]healthCheck {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string]healthCheck{}
	for _, ls := range a.services {
		for _, c := range ls.checks {
			hc := c.state
			hc.Node, hc.ServiceTags = node, ls.svc.Tags
			out[hc.CheckID] = hc
		}
	}
	return out
}
