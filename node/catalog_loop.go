package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/roostkv/roost/actors/membership"
)

// The catalog's loop: one goroutine per node that runs the agent's clock
// (TTL lapses, deregistrations of long-critical services), starts the HTTP
// checks that are due, writes the records that are due, and sweeps the
// catalog keys this node leads of nodes that died or left.

// Timing of the catalog loop.
const (
	catalogTick       = 100 * time.Millisecond // how often TTLs and HTTP checks are looked at: a TTL lapses within this of its time
	catalogSweepEvery = time.Second            // how often a node looks for records of dead nodes among the keys it leads, while it may find some
	catalogSweepFor   = 30 * time.Second       // how long after a membership change (or its start) a node keeps looking
	catalogWriteWait  = 2 * time.Second        // one attempt of the loop to write a record
)

// selfService is the ID and name of the service every node with an HTTP API
// registers for itself, so that a consul client or Prometheus's
// consul_sd_configs finds every node's HTTP API (and /metrics).
const selfService = "roost"

// startCatalog starts the agent, registers the node's own service and
// serves the pick subject (catalog_pick.go).
func (n *Node) startCatalog() error {
	if n.httpAddr != "" {
		n.registerSelf()
	}
	if err := n.startPick(); err != nil {
		return err
	}
	n.agent.running = true
	go n.runCatalog()
	return nil
}

// stopCatalog ends the loop and the HTTP checks under way.
func (n *Node) stopCatalog() {
	if n.agent == nil {
		return
	}
	n.stopPick()
	n.agent.cancel()
	if n.agent.running {
		<-n.agent.done
	}
	n.agent.polls.Wait()
}

// registerSelf registers the node's own service: its HTTP API's address
// and port, with no check of its own (its serfHealth is its liveness).
func (n *Node) registerSelf() {
	host, port := hostOf(n.httpAddr), 0
	if i := strings.LastIndexByte(n.httpAddr, ':'); i >= 0 {
		port, _ = strconv.Atoi(n.httpAddr[i+1:])
	}
	meta := map[string]string{"node": n.cfg.Name, "version": Version, "nats": n.bus.ClientURL(), "role": n.cfg.Role}
	ls := &localService{internal: true, svc: agentService{
		ID: selfService, Service: selfService, Tags: []string{n.cfg.Role}, Meta: meta,
		Port: port, Address: host, Weights: agentWeights{Passing: 1, Warning: 1},
	}}
	a := n.agent
	a.mu.Lock()
	a.services[selfService] = ls
	a.changed(selfService)
	a.mu.Unlock()
}

// runCatalog is the catalog's loop.
func (n *Node) runCatalog() {
	a := n.agent
	defer close(a.done)
	tick := time.NewTicker(catalogTick)
	defer tick.Stop()
	sweep := time.NewTicker(catalogSweepEvery)
	defer sweep.Stop()
	views, unsubscribe := n.members.Subscribe()
	defer unsubscribe()
	// A record goes stale only when its node dies, leaves or restarts: a
	// membership change, which starts a sweep at once; the periodic sweeps
	// that follow catch what a primary still syncing then skipped. Each
	// sweep walks the store, so they stop catalogSweepFor after the last
	// change (or this node's start).
	sweepUntil := time.Now().Add(catalogSweepFor)
	for {
		select {
		case <-a.ctx.Done(): // the node stops
			return
		case <-a.kick: // a record changed
			n.syncDue()
		case now := <-tick.C: // the clock: lapses, polls, and writes still due
			a.expire(now)
			n.pollChecks(now)
			n.syncDue()
		case _, ok := <-views: // a membership change: a node may have died or left
			if !ok {
				views = nil // the membership stopped
				continue
			}
			sweepUntil = time.Now().Add(catalogSweepFor)
			n.sweepCatalog()
		case now := <-sweep.C: // forget dead nodes' records (again, in case a primary moved meanwhile)
			if now.Before(sweepUntil) {
				n.sweepCatalog()
			}
		}
	}
}

// syncDue writes every record that is due, once; one that fails stays due.
func (n *Node) syncDue() {
	for id := range n.agent.dueNow() {
		ctx, cancel := context.WithTimeout(n.agent.ctx, catalogWriteWait)
		err := n.syncService(ctx, id)
		cancel()
		if err != nil && n.agent.ctx.Err() == nil {
			n.log.Debug("catalog: write failed, retrying", "service", id, "err", err)
		}
	}
}

// pollChecks starts the HTTP checks that are due, each on its own goroutine.
func (n *Node) pollChecks(now time.Time) {
	a := n.agent
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ls := range a.services {
		for _, c := range ls.checks {
			if c.url == "" || c.polling || now.Before(c.nextPoll) {
				continue
			}
			c.polling, c.nextPoll = true, now.Add(c.interval)
			a.polls.Add(1)
			go n.pollCheck(ls.svc.ID, c)
		}
	}
}

// pollCheck polls one HTTP check and records its status, as consul reads
// it: 2xx passing, 429 warning, anything else (or no answer in time)
// critical.
func (n *Node) pollCheck(serviceID string, c *localCheck) {
	a := n.agent
	defer a.polls.Done()
	status, output := httpCheck(a.ctx, c.method, c.url, c.header, c.timeout)
	a.mu.Lock()
	defer a.mu.Unlock()
	c.polling = false
	if a.ctx.Err() != nil {
		return
	}
	if c.set(status, output, time.Now()) && a.services[serviceID] != nil {
		a.changed(serviceID)
	}
}

// httpCheck runs one HTTP check.
func httpCheck(ctx context.Context, method, url string, header map[string][]string, timeout time.Duration) (status, output string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return checkCritical, err.Error()
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("User-Agent", "Roost Health Check")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return checkCritical, fmt.Sprintf("HTTP %s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	output = fmt.Sprintf("HTTP %s %s: %s Output: %s", method, url, resp.Status, body)
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return checkPassing, output
	case resp.StatusCode == http.StatusTooManyRequests:
		return checkWarning, output
	}
	return checkCritical, output
}

// staleRecord reports whether a catalog record belongs to no live process
// and may be deleted: its node is dead or has left, or another process of
// the same name has taken over (a restart), or — once settled, that is once
// this node has run long enough to have heard every live peer — the view
// has no member of that name at all.
func staleRecord(view membership.View, rec *svcRecord, settled bool) bool {
	m, ok := view.Find(rec.Node)
	switch {
	case !ok:
		return settled
	case m.ID != rec.NodeID:
		return true
	}
	return m.Status != membership.Alive && m.Status != membership.Suspect
}

// sweepCatalog deletes the stale records among the catalog keys whose
// partitions this node leads. Each key has one primary at a time, and a new
// primary sweeps too, so a record outlives its node by at most a sweep
// period after the node is declared dead, whoever crashes meanwhile. The
// delete is conditional on the version read, so a record written anew
// meanwhile (its node restarted and registered again) stays.
func (n *Node) sweepCatalog() {
	if n.routing.Load() == nil || n.leaving.Load() {
		return
	}
	view := n.members.View() // the freshest, maybe ahead of the routing's
	settled := time.Since(n.started) > time.Duration(n.cfg.DeadAfter)*n.cfg.HeartbeatInterval
	entries, _ := n.store.Scan(svcPrefix, "", 0, false)
	for i := range entries {
		e := &entries[i]
		if _, local := n.locate(e.Key); !local {
			continue
		}
		var rec svcRecord
		if err := json.Unmarshal(e.Value, &rec); err == nil && !staleRecord(view, &rec, settled) {
			continue
		}
		ctx, cancel := context.WithTimeout(n.agent.ctx, catalogWriteWait)
		err := n.writeReserved(ctx, reservedWrite{key: e.Key, del: true, cas: e.Version, checkCAS: true})
		cancel()
		if err == nil {
			n.agent.cache.drop()
			n.log.Info("catalog: removed the service of a node that is gone", "node", rec.Node, "service", rec.Service.ID)
		}
	}
}
