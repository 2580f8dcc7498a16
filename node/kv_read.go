package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// KV reads for the consul API. One key is read at its partition's primary,
// here or through that node's NodeKV subject. A prefix spans every
// partition, so it is gathered from every server node, each answering for
// the partitions it leads (as cluster scans are), in two rounds:
//
//  1. the index: every node's highest version under the prefix, tombstones
//     included (NodeIndex); their maximum M is the prefix's index;
//  2. the entries, only when the query answers now (NodeKV pages): each node
//     first raises its version clock above M, then reads.
//
// Versions come from each node's own clock, so a write on one node may take
// a version below one already taken on another. Raising every clock above
// M before reading closes that gap: a change the answer misses comes after
// its node's read, so after the raise, so its version is above M, and a
// blocking query on index M sees it. A one-key read is one step at the
// primary, which first raises its clock above the index the client holds.

// startKV serves this node's KV subjects and joins the change feed.
func (n *Node) startKV() error {
	if err := n.startFeed(); err != nil {
		return err
	}
	nc := n.bus.Conn()
	subs := []struct {
		subject string
		serve   func(*nats.Msg)
	}{
		{n.subj.NodeKV(n.id), n.serveKV},
		{n.subj.NodeIndex(n.id), n.serveIndex},
	}
	for _, s := range subs {
		// Each request on a goroutine of its own: a long prefix read must not
		// hold up the one-key reads behind it.
		if _, err := nc.Subscribe(s.subject, func(m *nats.Msg) { go s.serve(m) }); err != nil {
			return fmt.Errorf("node: subscribe %s: %w", s.subject, err)
		}
	}
	return nc.Flush()
}

// serveKV answers a kvRequest from another node.
func (n *Node) serveKV(m *nats.Msg) {
	var req kvRequest
	if err := wire.Unmarshal(m.Data, &req); err != nil {
		respondMsgError(m, errBadRequest("malformed KV request: %v", err))
		return
	}
	var resp kvResponse
	if req.Prefix {
		resp = n.localKVPage(req)
	} else {
		if _, local := n.locate(req.Key); !local {
			respondMsgError(m, &apiError{code: wire.CodeUnavailable, msg: "not the primary of this key's partition any more"})
			return
		}
		resp = n.localKVKey(req.Key, req.Observe)
	}
	data, err := wire.Marshal(&resp)
	if err != nil {
		respondMsgError(m, err)
		return
	}
	_ = m.Respond(data)
}

// serveIndex answers an indexRequest from another node.
func (n *Node) serveIndex(m *nats.Msg) {
	var req indexRequest
	if err := wire.Unmarshal(m.Data, &req); err != nil {
		respondMsgError(m, errBadRequest("malformed index request: %v", err))
		return
	}
	n.observe(req.Observe)
	data, err := wire.Marshal(&indexResponse{Index: n.store.MaxVersion(req.Prefix)})
	if err != nil {
		respondMsgError(m, err)
		return
	}
	_ = m.Respond(data)
}

// localKVKey reads key here, after raising the clock above observe.
func (n *Node) localKVKey(key string, observe uint64) kvResponse {
	if reserved(key) {
		return n.localReservedKey(key, observe) // Roost's own (runtime_config.go)
	}
	n.observe(observe)
	if n.repl != nil && n.repl.Unacked() {
		// As a get does (Node.get): no value a pending ack=all write could
		// take back; after the ack timeout the write's own answer has
		// failed too, and the read answers what the store holds.
		_ = n.repl.ReadBarrier(partition.Of(key, n.cfg.Partitions), key, n.ackTimeout())
	}
	e, deleted, err := n.store.Lookup(key)
	n.hot.observe(key)
	if err != nil {
		// A loader may have it (load.go).
		if e, err = n.readThrough(key, err); err != nil {
			if codeOf(err) == wire.CodeUnavailable {
				return kvResponse{Index: deleted, LoadErr: err.Error()}
			}
			return kvResponse{Index: deleted}
		}
	} else {
		n.afterHit(key, &e)
	}
	return kvResponse{Entries: []kvEntry{kvEntryOf(&e, false)}, Index: e.Version}
}

// localKVPage is this node's page of the keys under req.Key, after
// req.After: those of the partitions it leads, cut to fit a bus message.
func (n *Node) localKVPage(req kvRequest) kvResponse {
	n.observe(req.Observe)
	entries, _ := n.store.Scan(req.Key, req.After, 0, req.KeysOnly)
	resp := kvResponse{Entries: make([]kvEntry, 0, min(len(entries), maxScanLimit))}
	budget := n.maxPayload - replyReserve
	for i := range entries {
		e := &entries[i]
		if _, local := n.locate(e.Key); !local {
			continue // moving away: its new primary answers for it
		}
		if reserved(e.Key) && !reserved(req.Key) {
			continue // Roost's own keys are listed only by Roost (reserved.go)
		}
		if budget -= int64(len(e.Key)+len(e.Value)) + resultOverhead; budget < 0 && len(resp.Entries) > 0 {
			resp.More = true
			break
		}
		resp.Entries = append(resp.Entries, kvEntryOf(e, req.KeysOnly))
	}
	return resp
}

func kvEntryOf(e *store.Entry, keysOnly bool) kvEntry {
	out := kvEntry{Key: e.Key, Version: e.Version, Created: e.Created, Flags: e.Flags}
	if !keysOnly {
		out.Value = e.Value
	}
	return out
}

// maxClockLead is how far ahead of this node's wall clock a version learnt
// from elsewhere may be and still raise its version clock. Versions are
// wall-clock microseconds, ahead of it only by clock skew between nodes and
// bursts of writes; a client's made-up ?index must not push the clock far
// ahead, as versions keep rising across a restart only while the wall clock
// has caught up with them.
const maxClockLead = time.Minute

// observe raises the node's version clock above v, a version learnt from a
// peer or a client, unless v is implausibly far ahead.
func (n *Node) observe(v uint64) {
	if v != 0 && v <= uint64(time.Now().Add(maxClockLead).UnixMicro()) {
		n.store.Observe(v)
	}
}

// kvKey reads one key at its partition's primary, raising that node's clock
// above observe first.
func (n *Node) kvKey(ctx context.Context, key string, observe uint64) (kvResponse, error) {
	req := kvRequest{Key: key, Observe: observe}
	for {
		p, local := n.locate(key)
		if local {
			return loadFailure(n.localKVKey(key, observe))
		}
		var resp kvResponse
		err := errNoPrimary(p)
		if id := n.primaryID(p); id != "" {
			if err = n.askNode(ctx, n.subj.NodeKV(id), &req, &resp); err == nil {
				return loadFailure(resp)
			}
		}
		if codeOf(err) != wire.CodeUnavailable || ctx.Err() != nil {
			return resp, err
		}
		// No primary right now, or it just let go: wait for the view to settle.
		select {
		case <-ctx.Done():
			return resp, errNoPrimary(p)
		case <-time.After(forwardRetry):
		}
	}
}

// loadFailure turns a one-key answer whose loader failed into its 503.
func loadFailure(resp kvResponse) (kvResponse, error) {
	if resp.LoadErr != "" {
		return kvResponse{}, &apiError{code: wire.CodeUnavailable, msg: resp.LoadErr}
	}
	return resp, nil
}

// primaryID is the node ID of partition p's primary, "" when unknown.
func (n *Node) primaryID(p int) string {
	r := n.routing.Load()
	if r == nil {
		return ""
	}
	return r.ids[r.table.Primary(p)]
}

// peer is a server node a prefix read gathers from; id "" = this node.
type peer struct{ name, id string }

// kvPeers are the server nodes to gather a prefix from.
func (n *Node) kvPeers() ([]peer, error) {
	r := n.routing.Load()
	if r == nil {
		return []peer{{name: n.cfg.Name}}, nil
	}
	names := r.table.Members()
	peers := make([]peer, 0, len(names))
	for _, name := range names {
		if name == n.cfg.Name {
			peers = append(peers, peer{name: name})
			continue
		}
		id := r.ids[name]
		if id == "" {
			return nil, &apiError{code: wire.CodeUnavailable, msg: "node " + name + " is not reachable right now; retry shortly"}
		}
		peers = append(peers, peer{name: name, id: id})
	}
	if len(peers) == 0 {
		return nil, &apiError{code: wire.CodeUnavailable, msg: "no server node is alive to hold data"}
	}
	return peers, nil
}

// alone reports whether this node is the only one holding data.
func alone(peers []peer) bool { return len(peers) == 1 && peers[0].id == "" }

// kvIndex is the index of a prefix over the cluster: the highest version
// under it, deletes included. Every node first raises its clock above
// observe.
func (n *Node) kvIndex(ctx context.Context, peers []peer, prefix string, observe uint64) (uint64, error) {
	indexes := make([]uint64, len(peers))
	err := gather(peers, func(i int, p peer) error {
		if p.id == "" {
			n.observe(observe)
			indexes[i] = n.store.MaxVersion(prefix)
			return nil
		}
		var resp indexResponse
		err := n.askNode(ctx, n.subj.NodeIndex(p.id), &indexRequest{Prefix: prefix, Observe: observe}, &resp)
		indexes[i] = resp.Index
		return err
	})
	return slices.Max(indexes), err
}

// kvList gathers the keys under prefix from every node, in key order, each
// node first raising its clock above observe.
func (n *Node) kvList(ctx context.Context, peers []peer, prefix string, keysOnly bool, observe uint64) ([]kvEntry, error) {
	parts := make([][]kvEntry, len(peers))
	err := gather(peers, func(i int, p peer) error {
		req := kvRequest{Key: prefix, Prefix: true, KeysOnly: keysOnly, Observe: observe}
		if p.id == "" {
			for { // this node's pages, straight from the store
				page := n.localKVPage(req)
				parts[i] = append(parts[i], page.Entries...)
				if !page.More {
					return nil
				}
				req.After = page.Entries[len(page.Entries)-1].Key
			}
		}
		for {
			var page kvResponse
			if err := n.askNode(ctx, n.subj.NodeKV(p.id), &req, &page); err != nil {
				return err
			}
			parts[i] = append(parts[i], page.Entries...)
			if !page.More || len(page.Entries) == 0 {
				return nil
			}
			req.After = page.Entries[len(page.Entries)-1].Key
		}
	})
	if err != nil {
		return nil, err
	}
	all := slices.Concat(parts...)
	// A key that moved between nodes while they answered may come twice:
	// keep its newest version.
	slices.SortFunc(all, func(a, b kvEntry) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return -cmpUint(a.Version, b.Version)
	})
	return slices.CompactFunc(all, func(a, b kvEntry) bool { return a.Key == b.Key }), nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// gather runs fn for every peer concurrently and joins their errors.
func gather(peers []peer, fn func(i int, p peer) error) error {
	if len(peers) == 1 {
		return fn(0, peers[0])
	}
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			if err := fn(i, p); err != nil {
				errs[i] = fmt.Errorf("node %s: %w", p.name, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return &apiError{code: wire.CodeUnavailable, msg: err.Error()}
	}
	return nil
}

// askNode sends req to another node's subject and decodes its answer into
// resp. No answer, or none in time, is a 503; an error reply keeps its code.
func (n *Node) askNode(ctx context.Context, subject string, req, resp any) error {
	data, err := wire.Marshal(req)
	if err != nil {
		return err
	}
	msg, err := n.bus.Conn().RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &apiError{code: wire.CodeUnavailable, msg: "no answer from the node: it left or is restarting"}
	case err != nil && ctx.Err() != nil:
		return &apiError{code: wire.CodeUnavailable, msg: "the node did not answer in time"}
	case err != nil:
		return &apiError{code: wire.CodeUnavailable, msg: err.Error()}
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		c, _ := strconv.Atoi(code)
		return &apiError{code: c, msg: msg.Header.Get(micro.ErrorHeader)}
	}
	if err := wire.Unmarshal(msg.Data, resp); err != nil {
		return &apiError{code: wire.CodeInternal, msg: "malformed reply from a node: " + err.Error()}
	}
	return nil
}
