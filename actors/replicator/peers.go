package replicator

import (
	"maps"
	"sync"

	"github.com/roostkv/roost/bus/wire"
)

// claimCache holds the claims the peers' heartbeats carry, decoded once
// per payload.
type claimCache struct {
	mu   sync.Mutex
	raw  map[string]string        // peer -> its last payload
	byPe map[string]map[int]Claim // peer -> its claims, decoded
	id   map[string]string        // peer -> the node ID its last payload came from
	env  map[string]bool          // peer node ID -> it takes log envelopes
}

// peerClaims returns, per partition, what each live peer last said of it,
// stamped with when its last beat arrived.
func (r *Replicator) peerClaims() ([]map[string]Claim, map[string]int64) {
	out := make([]map[string]Claim, len(r.parts))
	heard := map[string]int64{}
	if r.cfg.Members == nil {
		return out, heard
	}
	pc := &r.peers
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.raw == nil {
		pc.raw, pc.byPe, pc.id, pc.env = map[string]string{}, map[string]map[int]Claim{}, map[string]string{}, map[string]bool{}
	}
	seen := map[string]bool{}
	for _, m := range r.cfg.Members().Live("") {
		if m.Self || m.Name == r.cfg.Name {
			continue
		}
		seen[m.Name] = true
		if raw := string(m.Extra); raw != pc.raw[m.Name] || m.ID != pc.id[m.Name] {
			var cs claims
			if len(m.Extra) > 0 && wire.Unmarshal(m.Extra, &cs) != nil {
				continue
			}
			pc.raw[m.Name], pc.byPe[m.Name] = raw, cs.Parts
			// By node ID: a node restarted on another build is another
			// process, with another ID, sent envelopes only once it says
			// it takes them.
			delete(pc.env, pc.id[m.Name])
			pc.id[m.Name], pc.env[m.ID] = m.ID, cs.Env == envelopeV1
		}
		at := m.LastSeen.UnixNano()
		heard[m.Name] = at
		for p, cl := range pc.byPe[m.Name] {
			if p < 0 || p >= len(out) {
				continue
			}
			if out[p] == nil {
				out[p] = map[string]Claim{}
			}
			cl.Seen = at
			out[p][m.Name] = cl
		}
	}
	for name := range pc.raw {
		if !seen[name] {
			delete(pc.env, pc.id[name])
			delete(pc.raw, name)
			delete(pc.byPe, name)
			delete(pc.id, name)
		}
	}
	r.setPeerEnv(maps.Clone(pc.env))
	return out, heard
}
