package replicator

import (
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
)

// onRequest serves a replication request from another node. Each runs on its
// own goroutine: a snapshot export must not hold up acks or fetches.
func (r *Replicator) onRequest(msg *nats.Msg) {
	var req Request
	if err := wire.Unmarshal(msg.Data, &req); err != nil || req.P < 0 || req.P >= len(r.parts) {
		r.respond(msg, &Response{Error: "malformed replication request"})
		return
	}
	r.background(func() {
		var resp Response
		switch req.Kind {
		case kindFetch:
			resp = r.serveFetch(&req)
		case kindSnapshot:
			resp = r.serveSnapshot(&req)
		case kindPush:
			resp = r.servePush(&req)
		case kindDigest:
			resp = r.serveDigest(&req)
		default:
			resp = Response{Error: "unknown replication request " + req.Kind}
		}
		r.respond(msg, &resp)
	})
}

func (r *Replicator) respond(msg *nats.Msg, resp *Response) {
	if data, err := wire.Marshal(resp); err == nil {
		_ = msg.Respond(data)
	}
}

// ask sends req to node id and decodes its answer.
func (r *Replicator) ask(id string, req *Request, resp *Response) error {
	if id == "" {
		return errors.New("node not live")
	}
	data, err := wire.Marshal(req)
	if err != nil {
		return err
	}
	msg, err := r.conn.Request(r.cfg.Subjects.NodeRepl(id), data, requestTimeout)
	if err != nil {
		return err
	}
	if err := wire.Unmarshal(msg.Data, resp); err != nil {
		return err
	}
	if resp.Error != "" {
		return errors.New(resp.Error)
	}
	return nil
}

// serveSnapshot answers one chunk of partition req.P: the records with keys
// after req.After. With req.Primary it serves only as the partition's ready
// primary, and the head tells where its log stood before the chunk was read.
func (r *Replicator) serveSnapshot(req *Request) Response {
	pt := r.parts[req.P]
	pt.mu.Lock()
	head, ok := ID{pt.term, pt.seq}, pt.role == rolePrimary && pt.ready
	stamp := pt.mutations.Load()
	if req.Fence && pt.role == rolePrimary {
		// A new primary takes over while our table still says we lead:
		// stop taking requests first, so that the copy it pulls now holds
		// every write we acknowledged and we answer no read it could miss.
		pt.leave(ErrNotPrimary)
		pt.fenced, pt.fencedBy = time.Now().Add(fenceFor), req.From
		r.log.Info("partition taken over by a new primary", "partition", req.P, "by", req.From)
	}
	pt.mu.Unlock()
	if req.Primary && !ok {
		return Response{Error: "not the ready primary"}
	}
	recs := r.snapshotOf(req.P, stamp)
	i, _ := slices.BinarySearchFunc(recs, req.After, func(rec store.Record, after string) int {
		if rec.Key <= after {
			return -1
		}
		return 1
	})
	if req.After == "" {
		i = 0
	}
	resp := Response{Head: head}
	size := 0
	for ; i < len(recs) && size < chunkBytes; i++ {
		resp.Entries = append(resp.Entries, entryOf(req.P, ID{}, recs[i]))
		size += len(recs[i].Key) + len(recs[i].Value) + 32
	}
	if i < len(recs) {
		resp.Next = recs[i-1].Key
	}
	return resp
}

// pull merges partition p from node id into the store, chunk by chunk, and
// returns the records it applied and the head of the first chunk. With
// fromPrimary only a ready primary answers; with fence the node stops
// leading p before it answers (a takeover).
func (r *Replicator) pull(p int, id string, fromPrimary, fence bool) (applied int, head ID, err error) {
	after := ""
	for first := true; ; first = false {
		var resp Response
		if err := r.ask(id, &Request{Kind: kindSnapshot, P: p, From: r.cfg.Name, After: after, Primary: fromPrimary, Fence: fence && first}, &resp); err != nil {
			return applied, head, err
		}
		if first {
			head = resp.Head
		}
		for _, e := range resp.Entries {
			if r.applyRecord(e) {
				applied++
			}
		}
		if resp.Next == "" {
			return applied, head, nil
		}
		after = resp.Next
	}
}

// push sends this node's records of partition p to node id, chunk by chunk.
func (r *Replicator) push(p int, id string) error {
	recs := r.snapshotOf(p, r.parts[p].mutations.Load())
	for len(recs) > 0 {
		req := Request{Kind: kindPush, P: p, From: r.cfg.Name}
		size := 0
		for len(recs) > 0 && size < chunkBytes {
			req.Records = append(req.Records, entryOf(p, ID{}, recs[0]))
			size += len(recs[0].Key) + len(recs[0].Value) + 32
			recs = recs[1:]
		}
		var resp Response
		if err := r.ask(id, &req, &resp); err != nil {
			return err
		}
	}
	return nil
}

// servePush merges pushed records. As the ready primary it logs each record
// that was newer, so that its replicas get it too; an owner that is not
// ready yet merges them into what it is syncing. A node that does not own
// the partition refuses, so that the pusher keeps its copy.
func (r *Replicator) servePush(req *Request) Response {
	pt := r.parts[req.P]
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.role == roleNone {
		return Response{Error: "not an owner of this partition"}
	}
	var newer []store.Record
	for _, e := range req.Records {
		if r.applyRecord(e) {
			newer = append(newer, e.record())
		}
	}
	if len(newer) > 0 && pt.role == rolePrimary && pt.ready {
		_, _ = r.append(pt, newer, false)
	}
	return Response{Applied: len(newer)}
}

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

// antiEntropy runs one round as primary: each replica gets the digests of
// the partitions it replicates from this node, and repairs those that differ.
//
// A digest is only comparable between copies at the same point of the log,
// so a partition takes part in a round only if no write changed its head
// while its digest was computed, and the replica compares it only at that
// same head: busy partitions wait for a quiet round (the log keeps them in
// step meanwhile), and an in-flight write never passes for a divergence.
func (r *Replicator) antiEntropy() {
	byReplica := map[string]map[int]bool{}
	before := map[int]ID{}
	for _, pt := range r.parts {
		pt.mu.Lock()
		if pt.role == rolePrimary && pt.ready {
			before[pt.p] = ID{pt.term, pt.seq}
			for _, name := range pt.replicas {
				if byReplica[name] == nil {
					byReplica[name] = map[int]bool{}
				}
				byReplica[name][pt.p] = true
			}
		}
		pt.mu.Unlock()
	}
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
	quiet := r.unchanged(before)
	for name, ps := range byReplica {
		req := Request{Kind: kindDigest, From: r.cfg.Name, Digests: map[int]Digest{}, Heads: map[int]ID{}}
		for p := range ps {
			if quiet[p] {
				req.Digests[p], req.Heads[p] = mine[p], before[p]
			}
		}
		if len(req.Digests) == 0 {
			continue
		}
		var resp Response
		if err := r.ask(r.idOf(name), &req, &resp); err != nil {
			r.log.Debug("anti-entropy round skipped a replica", "replica", name, "err", err)
			continue
		}
		if len(resp.Differ) > 0 {
			r.log.Info("anti-entropy repairs partitions", "replica", name, "partitions", resp.Differ)
		}
	}
}

// unchanged returns the partitions whose last ID is still the one in before.
func (r *Replicator) unchanged(before map[int]ID) map[int]bool {
	out := make(map[int]bool, len(before))
	for p, id := range before {
		pt := r.parts[p]
		pt.mu.Lock()
		out[p] = ID{pt.term, pt.seq} == id
		pt.mu.Unlock()
	}
	return out
}

// serveDigest compares the primary's digests with this node's copies and
// repairs, in the background, every partition that differs: this node
// pushes its records to the primary (which keeps and logs the newer ones)
// and pulls the primary's (keeping the newer ones), so both end with the
// latest version of every key. A partition is compared only if this replica
// has applied the primary's log exactly up to the head the digest was taken
// at, before and after computing its own.
func (r *Replicator) serveDigest(req *Request) Response {
	at := func(p int) bool {
		pt := r.parts[p]
		pt.mu.Lock()
		defer pt.mu.Unlock()
		return pt.role == roleReplica && pt.primary == req.From && !pt.syncing && ID{pt.term, pt.seq} == req.Heads[p]
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
	if len(differ) > 0 {
		id := r.idOf(req.From)
		r.background(func() {
			for _, p := range differ {
				if err := r.push(p, id); err != nil {
					r.log.Debug("anti-entropy push failed", "partition", p, "err", err)
				}
				if _, _, err := r.pull(p, id, false, false); err != nil {
					r.log.Debug("anti-entropy pull failed", "partition", p, "err", err)
				}
			}
		})
	}
	return Response{Differ: differ}
}
