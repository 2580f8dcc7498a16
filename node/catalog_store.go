package node

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/roostkv/roost/bus/wire"
)

// Writes of the catalog's records go through node/reserved_write.go.

// readCatalog reads every live record of the catalog, blocking as b says,
// and returns them with the catalog's index: the highest version under its
// prefix, deletes included.
func (n *Node) readCatalog(ctx context.Context, b blocking) ([]catalogEntry, uint64, error) {
	res, err := n.queryCatalog(ctx, b)
	if err != nil {
		return nil, 0, err
	}
	r := n.routing.Load()
	if r == nil {
		return nil, res.index, nil
	}
	out := make([]catalogEntry, 0, len(res.entries))
	decoded := n.agent.cache.decoded()
	fresh := make(map[string]decodedRecord, len(res.entries))
	defer n.agent.cache.keepDecoded(fresh)
	for _, e := range res.entries {
		d, ok := decoded[e.Key]
		if !ok || d.version != e.Version {
			d = decodedRecord{version: e.Version}
			if err := json.Unmarshal(e.Value, &d.rec); err != nil {
				n.log.Warn("catalog: unreadable record", "key", strings.TrimPrefix(e.Key, svcPrefix), "err", err)
				continue
			}
		}
		fresh[e.Key] = d
		rec := d.rec // shared with other reads: read only
		m, live := liveRecord(r.view, &rec)
		if !live {
			continue // its node died or left: catalog_sweep.go deletes it
		}
		out = append(out, catalogEntry{rec: rec, member: m, created: e.Created, version: e.Version})
	}
	return out, res.index, nil
}

// catalogReadAttempt bounds one read of the catalog's keys across the
// nodes. A node that dies while it is asked never answers; the read is
// tried again, with the nodes alive then, rather than wait the whole
// forwardTimeout for it: so a reader learns of a node's death at about the
// time the cluster does.
const catalogReadAttempt = time.Second

// queryCatalog reads the catalog's keys as a blocking KV prefix query does
// (kv_block.go's queryKV), each read tried in attempts of
// catalogReadAttempt for up to forwardTimeout.
func (n *Node) queryCatalog(ctx context.Context, b blocking) (kvResult, error) {
	q := kvQuery{key: svcPrefix, prefix: true}
	w := n.feed.waiters.add(q.key, q.prefix) // before reading: no change after the read goes unheard
	defer n.feed.waiters.remove(w)
	timer := time.NewTimer(b.wait)
	defer timer.Stop()
	final := b.index == 0
	for {
		res, ready, err := n.readCatalogKeys(ctx, q, b.index, final)
		if err != nil || ready {
			return res, err
		}
		select {
		case <-w.wake: // a change of the catalog: read again
		case <-timer.C: // the wait is over: answer with what there is
			final = true
		case <-n.feed.waiters.stopping(): // the node stops: answer now
			final = true
		case <-ctx.Done(): // the client went away
			return kvResult{}, ctx.Err()
		}
	}
}

// readCatalogKeys is readKV in attempts of catalogReadAttempt, again while
// a node does not answer, for up to forwardTimeout.
func (n *Node) readCatalogKeys(ctx context.Context, q kvQuery, min uint64, final bool) (kvResult, bool, error) {
	start := time.Now()
	if res, ok := n.agent.cache.get(start); ok { // catalog_cache.go
		return res, final || res.index > min, nil
	}
	deadline := start.Add(forwardTimeout)
	for {
		actx, cancel := context.WithTimeout(ctx, catalogReadAttempt)
		res, ready, err := n.readKV(actx, q, min, final)
		cancel()
		if err == nil && ready {
			n.agent.cache.put(res, start)
		}
		if codeOf(err) != wire.CodeUnavailable || ctx.Err() != nil || time.Now().After(deadline) {
			return res, ready, err
		}
		select {
		case <-ctx.Done():
			return res, ready, err
		case <-time.After(forwardRetry):
		}
	}
}
