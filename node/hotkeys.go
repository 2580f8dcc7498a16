package node

import (
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/topk"
)

// Hot keys: each node keeps an approximate top-k of the keys it reads as
// their primary (gets of every API, hits and misses), with the
// space-saving algorithm (package topk) over a sample of the reads, and
// halves the counts every hotHalveEvery so that the list follows what is
// hot now. GET /v1/roost/hotkeys, `roost hotkeys` and the dashboard show it.
//
// The get path pays one cheap random draw per read (math/rand/v2's
// per-thread generator, no lock); one read in hotSampleEvery takes a mutex
// and updates the summary.

// Settings of the hot-key summary.
const (
	hotSampleEvery = 16          // one read in this many is counted (a power of 2)
	hotCounters    = 64          // keys the summary tracks (space-saving's k)
	hotHalveEvery  = time.Minute // counts are halved this often
	hotDefaultTop  = 10          // keys a query answers unless it asks for another count
)

// adminHotKeys is the verb of a node's hot-key subject (wire.Subjects.NodeAdmin):
// JSON {"n": count} in, NodeHotKeys out.
const adminHotKeys = "hotkeys"

// hotKeys is a node's summary of its reads.
type hotKeys struct {
	mu        sync.Mutex
	sum       *topk.Summary // guarded by mu
	sampled   uint64        // reads counted, guarded by mu
	nextHalve time.Time     // guarded by mu
}

func newHotKeys() *hotKeys {
	return &hotKeys{sum: topk.New(hotCounters), nextHalve: time.Now().Add(hotHalveEvery)}
}

// observe counts a read of key, one time in hotSampleEvery.
func (h *hotKeys) observe(key string) {
	if rand.Uint32()&(hotSampleEvery-1) != 0 {
		return
	}
	h.mu.Lock()
	h.sum.Observe(key, 1)
	h.sampled++
	if h.sampled%1024 == 0 {
		h.halveIfDue(time.Now())
	}
	h.mu.Unlock()
}

// halveIfDue halves the counts once per hotHalveEvery; the caller holds mu.
func (h *hotKeys) halveIfDue(now time.Time) {
	for !now.Before(h.nextHalve) {
		h.sum.Halve()
		h.nextHalve = h.nextHalve.Add(hotHalveEvery)
	}
}

// HotKey is one key of a node's hot list. Reads are estimated from the
// sample, scaled up: the key's reads lie between Reads-Error and Reads
// (give or take the sampling).
type HotKey struct {
	Key   string `json:"key"`
	Reads uint64 `json:"reads"` // estimated reads in the recent window (older ones halved every minute)
	Error uint64 `json:"error"` // how much of Reads may belong to other keys
}

// NodeHotKeys is one node's hot list.
type NodeHotKeys struct {
	Name         string   `json:"name"`
	ID           string   `json:"id"`
	SampleEvery  int      `json:"sample_every"`  // one read in this many is counted
	HalveSeconds float64  `json:"halve_seconds"` // counts are halved this often
	Keys         []HotKey `json:"keys"`          // hottest first
	Error        string   `json:"error,omitempty"`
}

// HotKeys returns this node's top hot keys (at most top; 0 = the default).
func (n *Node) HotKeys(top int) NodeHotKeys {
	if top <= 0 {
		top = hotDefaultTop
	}
	h := n.hot
	h.mu.Lock()
	h.halveIfDue(time.Now())
	counters := h.sum.Top(top)
	h.mu.Unlock()
	out := NodeHotKeys{Name: n.cfg.Name, ID: n.id, SampleEvery: hotSampleEvery, HalveSeconds: hotHalveEvery.Seconds(), Keys: make([]HotKey, len(counters))}
	for i, c := range counters {
		out.Keys[i] = HotKey{Key: c.Key, Reads: c.Count * hotSampleEvery, Error: c.Error * hotSampleEvery}
	}
	return out
}

// hotKeysRequest is the body of a node's hot-key subject.
type hotKeysRequest struct {
	N int `json:"n"` // keys to answer; 0 = the default
}

// onAdminHotKeys answers this node's hot list on its admin subject.
func (n *Node) onAdminHotKeys(msg *nats.Msg) {
	var req hotKeysRequest
	_ = json.Unmarshal(msg.Data, &req) // empty or malformed: the default count
	data, _ := json.Marshal(n.HotKeys(min(req.N, hotCounters)))
	_ = msg.Respond(data)
}

// HotKeysReply is the answer of GET /v1/roost/hotkeys.
type HotKeysReply struct {
	Node  string        `json:"node"` // the answering node
	Time  time.Time     `json:"time"`
	Nodes []NodeHotKeys `json:"nodes"` // every live member's list
}

// httpHotKeys answers GET /v1/roost/hotkeys[?n=N]: the hot list of every
// live member of this node's view, asked in parallel.
func (n *Node) httpHotKeys(w http.ResponseWriter, r *http.Request) {
	top := hotDefaultTop
	if v := r.URL.Query().Get("n"); v != "" {
		c, err := strconv.Atoi(v)
		if err != nil || c < 1 || c > hotCounters {
			http.Error(w, "bad n "+strconv.Quote(v)+": want 1.."+strconv.Itoa(hotCounters), http.StatusBadRequest)
			return
		}
		top = c
	}
	reply := HotKeysReply{Node: n.cfg.Name, Time: time.Now()}
	view := n.members.View()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range view.Members {
		switch {
		case m.Self:
			mu.Lock()
			reply.Nodes = append(reply.Nodes, n.HotKeys(top))
			mu.Unlock()
		case m.Status == membership.Alive || m.Status == membership.Suspect:
			wg.Go(func() {
				hk := n.remoteHotKeys(m.Name, m.ID, top)
				mu.Lock()
				reply.Nodes = append(reply.Nodes, hk)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	slices.SortFunc(reply.Nodes, func(a, b NodeHotKeys) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, reply)
}

// remoteHotKeys asks another node for its hot list.
func (n *Node) remoteHotKeys(name, id string, top int) NodeHotKeys {
	base := NodeHotKeys{Name: name, ID: id}
	data, _ := json.Marshal(hotKeysRequest{N: top})
	msg, err := n.bus.Conn().Request(n.subj.NodeAdmin(id, adminHotKeys), data, statsTimeout)
	if err != nil {
		base.Error = err.Error()
		return base
	}
	var hk NodeHotKeys
	if err := json.Unmarshal(msg.Data, &hk); err != nil {
		base.Error = "malformed answer: " + err.Error()
		return base
	}
	return hk
}

// hotKeyRoutes registers GET /v1/roost/hotkeys (token required).
func (n *Node) hotKeyRoutes(mux *http.ServeMux) {
	mux.Handle("GET /v1/roost/hotkeys", n.requireToken(http.HandlerFunc(n.httpHotKeys)))
}
