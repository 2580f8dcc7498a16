package replicator

import (
	"slices"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
)

// Anti-entropy: the primary of a partition compares digests of its copy
// with its replicas' now and then; a replica whose copy differs pushes it to
// the primary (which keeps and logs what is newer) and syncs the primary's
// again (Repair), so copies converge after a split heals.
//
// A digest is only comparable between copies at the same point of the log,
// so a partition takes part in a round only if no write changed its head
// while its digest was computed, and the replica compares it only at that
// same head: busy partitions wait for a quiet round (the log keeps them in
// step meanwhile), and an in-flight write never passes for a divergence.

// digests computes the digest of every partition in want, in one pass over
// the store.
func (r *Replicator) digests(want map[int]bool) map[int]Digest {
	out := make(map[int]Digest, len(want))
	r.st.Versions(func(key string, version uint64, deleted bool) {
		p := r.partitionOf(key)
		if !want[p] {
			return
		}
		d := out[p]
		d.Sum ^= recordHash(key, version, deleted)
		d.Count++
		out[p] = d
	})
	return out
}

// recordHash hashes one (key, version, deleted) the same way in every
// process: FNV-1a of the key, mixed with the version by splitmix64.
func recordHash(key string, version uint64, deleted bool) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	if deleted {
		version = ^version
	}
	x := h ^ version + 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// heads returns the last ID of every partition this node leads and serves,
// and the replicas of each.
func (r *Replicator) heads() (map[int]ID, map[string]map[int]bool) {
	heads := map[int]ID{}
	byReplica := map[string]map[int]bool{}
	for _, pt := range r.parts {
		pt.mu.Lock()
		if pt.c.serving() {
			heads[pt.p] = ID{pt.c.term, pt.c.seq}
			for _, name := range pt.c.replicas() {
				if byReplica[name] == nil {
					byReplica[name] = map[int]bool{}
				}
				byReplica[name][pt.p] = true
			}
		}
		pt.mu.Unlock()
	}
	return heads, byReplica
}

// antiEntropy runs one round as primary.
func (r *Replicator) antiEntropy() {
	before, byReplica := r.heads()
	if len(byReplica) == 0 {
		return
	}
	all := map[int]bool{}
	for _, ps := range byReplica {
		for p := range ps {
			all[p] = true
		}
	}
	mine := r.digests(all)
	after, _ := r.heads()
	for name, ps := range byReplica {
		req := DigestRequest{From: r.cfg.Name, Digests: map[int]Digest{}, Heads: map[int]ID{}}
		for p := range ps {
			if before[p] == after[p] {
				req.Digests[p], req.Heads[p] = mine[p], before[p]
			}
		}
		id := r.idOf(name)
		if len(req.Digests) == 0 || id == "" {
			continue
		}
		data, err := encode(req)
		if err != nil {
			continue
		}
		msg, err := r.conn.Request(r.cfg.Subjects.NodeRepl(id), data, r.cfg.RequestTimeout)
		if err != nil {
			r.log.Debug("anti-entropy round skipped a replica", "replica", name, "err", err)
			continue
		}
		var resp DigestResponse
		if wire.Unmarshal(msg.Data, &resp) == nil && len(resp.Differ) > 0 {
			r.log.Info("anti-entropy repairs partitions", "replica", name, "partitions", resp.Differ)
		}
	}
}

// serveDigest compares a primary's digests with this node's copies, at the
// same heads, and repairs the partitions that differ.
func (r *Replicator) serveDigest(msg *nats.Msg, req *DigestRequest) {
	at := func(p int) bool {
		pt := r.parts[p]
		pt.mu.Lock()
		defer pt.mu.Unlock()
		c := pt.c
		return c.role == RoleReplica && c.primary == req.From && c.ready && ID{c.term, c.seq} == req.Heads[p]
	}
	want := map[int]bool{}
	for p := range req.Digests {
		if p >= 0 && p < len(r.parts) && at(p) {
			want[p] = true
		}
	}
	mine := r.digests(want)
	var differ []int
	for p := range want {
		if mine[p] != req.Digests[p] && at(p) {
			differ = append(differ, p)
		}
	}
	slices.Sort(differ)
	for _, p := range differ {
		_ = r.step(r.parts[p], Repair{})
	}
	if data, err := wire.Marshal(&DigestResponse{Differ: differ}); err == nil {
		_ = msg.Respond(data)
	}
}
