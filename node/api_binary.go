package node

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// The binary API: msgpack batches and prefix scans (docs/PROTOCOL.md).

// Limits of the binary API.
const (
	maxBatchOps      = 10000 // operations in one BatchRequest
	defaultScanLimit = 1000  // keys in one scan page when the request says 0
	maxScanLimit     = 10000 // keys in one scan page at most
)

func (n *Node) handleBatch(req micro.Request) {
	br := batchRequests.Get().(*wire.BatchRequest)
	// The keys are strings over the request's bytes (NATS gives each
	// message a buffer of its own, which nothing changes): the one-pass
	// read keeps none of them past the batch (getbatch.go); every other
	// path gets copies (ownKeys).
	if err := br.UnmarshalSharedKeys(req.Data()); err != nil {
		releaseBatchRequest(br)
		respondError(req, errBadRequest("malformed batch: %v", err))
		return
	}
	if len(br.Ops) > maxBatchOps {
		releaseBatchRequest(br)
		respondError(req, errTooLarge("batch of %d operations is over the limit of %d", len(br.Ops), maxBatchOps))
		return
	}
	if _, err := parseAck(br.Ack); err != nil {
		releaseBatchRequest(br)
		respondError(req, err)
		return
	}
	local := n.allLocal(br.Ops)
	if n.batchReadable(br.Ops, local) {
		n.answerGets(req, br) // one pass for the whole batch (getbatch.go)
		return
	}
	ownKeys(br.Ops)
	loading := local && br.Ack != wire.AckAll && n.mayLoadAny(br.Ops)
	switch {
	case local && !loading && plainGets(br.Ops):
		results := n.readBatch(br.Ops)
		n.respondBatch(req, results)
		releaseResults(results)
		releaseBatchRequest(br)
	case local && br.Ack != wire.AckAll && !loading:
		n.respondBatch(req, n.executeBatch(br.Ops, br.Ack))
		releaseBatchRequest(br)
	default:
		// Some operations are forwarded, or may wait for loaders: answer
		// from a goroutine of its own so that this subscription keeps
		// serving meanwhile.
		d := n.detach(req)
		n.async.Go(func() {
			if loading {
				n.prefetchLoads(br.Ops) // the batch's missing keys load at once (load.go)
			}
			n.respondBatch(d, n.executeBatch(br.Ops, br.Ack))
			releaseBatchRequest(br)
		})
	}
}

// ownKeys replaces the keys of ops, which share the request's bytes, with
// copies: the paths other than the one-pass read may keep a key (a write
// in the store, the replication log, a load), and a kept key must not keep
// the whole request from the collector.
func ownKeys(ops []wire.Request) {
	for i := range ops {
		ops[i].Key = strings.Clone(ops[i].Key)
	}
}

// plainGets reports whether every op is a get without a TTL (which would
// touch the key: a write). Such a batch changes nothing, so its ops may run
// in any order.
func plainGets(ops []wire.Request) bool {
	for i := range ops {
		if ops[i].Op != wire.OpGet || ops[i].TTL != 0 {
			return false
		}
	}
	return true
}

// readBatch answers a batch of plain gets of keys this node leads, one key
// after another with no grouping by partition (there is no write to order
// them against), and records their metrics once for the batch: the path of
// such a batch when the one-pass read (getbatch.go) may not take it. The
// results come from a pool: give them back with releaseResults once
// encoded.
func (n *Node) readBatch(ops []wire.Request) []wire.Result {
	results := takeResults(len(ops))
	start := time.Now()
	for i := range ops {
		e, err := n.read(ops[i].Key)
		if err != nil {
			results[i] = errResult(err)
			continue
		}
		results[i] = wire.Result{Code: wire.CodeOK, Value: e.Value, Version: e.Version, Flags: e.Flags, Expires: unixMilli(e.Expires)}
	}
	n.metrics.doneBatch(opGet, start, results)
	return results
}

// Pools of the batch path: a batch's decoded request, its results, and the
// buffer its reply is encoded in, reused from one batch to the next instead
// of allocated per batch. Each is cleared before it goes back, so that it
// holds on to no key or value.
var (
	batchRequests = sync.Pool{New: func() any { return new(wire.BatchRequest) }}
	resultSlices  = sync.Pool{New: func() any { return new([]wire.Result) }}
	replyBuffers  = sync.Pool{New: func() any { return new([]byte) }}
)

// maxPooled is the largest batch (in operations) and reply buffer (in
// bytes) the pools keep: a rare huge batch is left to the collector.
const (
	maxPooledOps   = 1024
	maxPooledReply = 256 << 10
)

// releaseBatchRequest gives br back to its pool, cleared: the next batch
// decodes into it (wire's decoder leaves absent fields as they are).
func releaseBatchRequest(br *wire.BatchRequest) {
	if cap(br.Ops) > maxPooledOps {
		return
	}
	clear(br.Ops[:cap(br.Ops)])
	br.Ops, br.Ack = br.Ops[:0], ""
	batchRequests.Put(br)
}

// takeResults returns n zeroed results from the pool.
func takeResults(n int) []wire.Result {
	p := resultSlices.Get().(*[]wire.Result)
	if cap(*p) < n {
		resultSlices.Put(p)
		return make([]wire.Result, n)
	}
	return (*p)[:n]
}

// releaseResults gives results, from takeResults, back to the pool.
func releaseResults(results []wire.Result) {
	if cap(results) > maxPooledOps {
		return
	}
	clear(results[:cap(results)])
	results = results[:0]
	resultSlices.Put(&results)
}

// allLocal reports whether this node leads the partitions of every op.
func (n *Node) allLocal(ops []wire.Request) bool {
	for i := range ops {
		if _, local := n.locate(ops[i].Key); !local {
			return false
		}
	}
	return true
}

// respondBatch answers a batch with its results, failing alone each get
// whose value no longer fits in the reply: the other operations sharing the
// message still succeed and, asked alone, it fits (MaxValue is below the bus
// limit). The reply is encoded in a pooled buffer: Respond copies it out.
func (n *Node) respondBatch(req micro.Request, results []wire.Result) {
	budget := n.maxPayload - replyReserve
	for i := range results {
		size := int64(len(results[i].Value)) + resultOverhead
		if size > budget && len(results[i].Value) > 0 {
			results[i] = wire.Result{Code: wire.CodeTooLarge, Error: ErrReplyFull.Error()}
			size = resultOverhead
		}
		budget -= size
	}
	buf := replyBuffers.Get().(*[]byte)
	data := wire.BatchResponse{Results: results}.AppendMsgpack((*buf)[:0])
	if int64(len(data)) > n.maxPayload {
		respondError(req, errTooLarge("reply of %d bytes is over the bus limit of %d: ask for fewer keys", len(data), n.maxPayload))
	} else {
		_ = req.Respond(data)
	}
	if cap(data) <= maxPooledReply {
		*buf = data[:0]
	}
	replyBuffers.Put(buf)
}

// ErrReplyFull is the reason a get in a batch fails when the values before
// it already fill the reply; the same get alone succeeds.
var ErrReplyFull = errors.New("reply full: the values before this key fill the message; get it in a smaller batch")

// Reply sizing: room kept for msgpack framing, and per-result overhead
// beyond the value.
const (
	replyReserve   = 1024
	resultOverhead = 64
)

// apply runs one operation of a partition this node leads: a get as it is,
// a write once its key and ack mode are checked, as the text API does
// (applyText, writeOne).
func (n *Node) apply(op *wire.Request, ack string) wire.Result {
	if op.Op == wire.OpGet && op.TTL == 0 { // a get with a TTL touches: a write
		return n.getResult(op.Key)
	}
	_, err := parseAck(ack)
	if err = cmp.Or(n.checkKey(op.Key), err); err != nil {
		r := errResult(err)
		n.metrics.doneResult(opKindOf(op.Op), time.Now(), r) // counted, as writeOne counts
		return r
	}
	return n.writeOne(op, partition.Of(op.Key, n.cfg.Partitions), ack)
}

// getResult reads one key.
func (n *Node) getResult(key string) wire.Result {
	e, err := n.get(key)
	if err != nil {
		return errResult(err)
	}
	return wire.Result{Code: wire.CodeOK, Value: e.Value, Version: e.Version, Flags: e.Flags, Expires: unixMilli(e.Expires)}
}

func errResult(err error) wire.Result {
	return wire.Result{Code: uint16(codeOf(err)), Error: err.Error()}
}

// handleScan answers one page of a prefix scan over the whole cluster: it
// gathers a page from every server node (each the keys of the partitions it
// leads) and merges them.
func (n *Node) handleScan(req micro.Request) {
	sr, limit, err := parseScan(req.Data())
	if err != nil {
		respondError(req, err)
		return
	}
	r := n.routing.Load()
	peers := r.table.Members()
	if len(peers) <= 1 {
		n.respondScan(req, n.localScan(sr, limit))
		return
	}
	req = n.detach(req)
	n.async.Go(func() {
		pages := make([]wire.ScanResponse, len(peers))
		errs := make([]error, len(peers))
		var wg sync.WaitGroup
		for i, name := range peers {
			wg.Go(func() {
				if name == n.cfg.Name {
					pages[i] = n.localScan(sr, limit)
					return
				}
				pages[i], errs[i] = n.remoteScan(r.ids[name], sr)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			respondError(req, &apiError{code: wire.CodeUnavailable, msg: "scan: " + err.Error()})
			return
		}
		n.respondScan(req, mergeScan(pages, limit))
	})
}

// handleNodeScan answers this node's own page of a cluster scan.
func (n *Node) handleNodeScan(req micro.Request) {
	sr, limit, err := parseScan(req.Data())
	if err != nil {
		respondError(req, err)
		return
	}
	n.respondScan(req, n.localScan(sr, limit))
}

func parseScan(data []byte) (wire.ScanRequest, int, error) {
	var sr wire.ScanRequest
	if err := wire.Unmarshal(data, &sr); err != nil {
		return sr, 0, errBadRequest("malformed scan: %v", err)
	}
	switch limit := sr.Limit; {
	case limit < 0:
		return sr, 0, errBadRequest("negative scan limit %d", limit)
	case limit == 0:
		return sr, defaultScanLimit, nil
	case limit > maxScanLimit:
		return sr, maxScanLimit, nil
	default:
		return sr, limit, nil
	}
}

// localScan is the page of this node's keys, those of partitions it leads,
// cut short to fit the bus payload limit.
func (n *Node) localScan(sr wire.ScanRequest, limit int) wire.ScanResponse {
	entries, more := n.store.Scan(sr.Prefix, sr.After, limit, sr.KeysOnly)
	resp := wire.ScanResponse{Entries: make([]wire.Entry, 0, len(entries)), More: more}
	budget := n.maxPayload - replyReserve
	for _, e := range entries {
		if _, local := n.locate(e.Key); !local || reserved(e.Key) {
			continue // moving away (its new primary answers for it), or Roost's own (reserved.go)
		}
		size := int64(len(e.Key)+len(e.Value)) + resultOverhead
		if budget -= size; budget < 0 && len(resp.Entries) > 0 {
			resp.More = true
			break
		}
		resp.Entries = append(resp.Entries, wire.Entry{Key: e.Key, Value: e.Value, Version: e.Version, Flags: e.Flags, Expires: unixMilli(e.Expires)})
	}
	return resp
}

func (n *Node) remoteScan(nodeID string, sr wire.ScanRequest) (wire.ScanResponse, error) {
	var page wire.ScanResponse
	data, err := wire.Marshal(&sr)
	if err != nil {
		return page, err
	}
	resp, err := n.bus.Conn().Request(n.subj.NodeScan(nodeID), data, forwardTimeout)
	if err != nil {
		return page, err
	}
	if code := resp.Header.Get(micro.ErrorCodeHeader); code != "" {
		return page, errors.New(resp.Header.Get(micro.ErrorHeader))
	}
	return page, wire.Unmarshal(resp.Data, &page)
}

// mergeScan merges sorted pages into one page of at most limit keys. Keys
// past the shortest cut-off of a page that has More are left for the next
// page, so that no key is skipped.
func mergeScan(pages []wire.ScanResponse, limit int) wire.ScanResponse {
	var all []wire.Entry
	cut := ""
	for _, p := range pages {
		all = append(all, p.Entries...)
		if p.More && len(p.Entries) > 0 {
			if last := p.Entries[len(p.Entries)-1].Key; cut == "" || last < cut {
				cut = last
			}
		}
	}
	slices.SortFunc(all, func(a, b wire.Entry) int { return strings.Compare(a.Key, b.Key) })
	more := cut != ""
	if more {
		end, _ := slices.BinarySearchFunc(all, cut, func(e wire.Entry, k string) int { return strings.Compare(e.Key, k) })
		all = all[:end+1]
	}
	if len(all) > limit {
		all, more = all[:limit], true
	}
	return wire.ScanResponse{Entries: all, More: more}
}

func (n *Node) respondScan(req micro.Request, resp wire.ScanResponse) { n.respondMsgpack(req, &resp) }

func (n *Node) respondMsgpack(req micro.Request, v any) {
	data, err := wire.Marshal(v)
	if err != nil {
		respondError(req, &apiError{code: wire.CodeInternal, msg: err.Error()})
		return
	}
	if int64(len(data)) > n.maxPayload {
		respondError(req, errTooLarge("reply of %d bytes is over the bus limit of %d: ask for fewer keys", len(data), n.maxPayload))
		return
	}
	_ = req.Respond(data)
}

// unixMilli converts an expiry in Unix nanoseconds to milliseconds, keeping 0.
func unixMilli(nanos int64) int64 {
	if nanos == 0 {
		return 0
	}
	return time.Unix(0, nanos).UnixMilli()
}
