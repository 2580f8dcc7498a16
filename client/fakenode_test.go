package client_test

// This file is a test double of a Roost *node*: a NATS micro service that
// answers the binary batch and scan protocol and the status subject from a
// map, enough to unit-test the client. It runs against a real embedded NATS
// server. Integration tests against the real node live in integration/.

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/roostkv/roost/bus/wire"
)

// startServer runs an embedded NATS server on a random loopback port.
func startServer(tb testing.TB, token string) *server.Server {
	tb.Helper()
	srv, err := newServer(token)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Shutdown)
	return srv
}

func newServer(token string) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		NoLog:         true,
		NoSigs:        true,
		Authorization: token,
	})
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("nats server not ready")
	}
	return srv, nil
}

// entry is one key of the fake node.
type entry struct {
	value   []byte
	version uint64
	flags   uint64
	expires int64 // Unix ms; 0 = never
}

// fakeNode answers the binary API of a Roost node from a map.
//
// Keys of the form "code-NNN" answer every operation with status NNN. Keys
// passed to hold make the message that carries them wait until release.
type fakeNode struct {
	nc       *nats.Conn
	subj     wire.Subjects
	maxOps   int // a batch with more ops is refused whole with 413
	pageSize int // scan page size when the request names none

	batches atomic.Int64 // batch messages received
	ops     atomic.Int64 // operations received in batches
	scans   atomic.Int64 // scan messages received
	maxSeen atomic.Int64 // most ops seen in one batch

	mu       sync.Mutex
	data     map[string]entry
	version  uint64
	log      []wire.BatchRequest // every batch received, in order
	held     map[string]chan struct{}
	arrived  chan string          // a held key's message arrived
	failNext map[string][2]string // endpoint → code, description for its next message

	svc       micro.Service
	table     []byte                         // the table subject's answer; nil = no table endpoint yet
	tables    atomic.Int64                   // table requests answered
	bySubject map[string][]wire.BatchRequest // batches received, by subject
}

// startNode runs a fake node on a connection of its own to url.
func startNode(tb testing.TB, url string, token string) *fakeNode {
	tb.Helper()
	f, stop, err := newFakeNode(url, token)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return f
}

func newFakeNode(url, token string) (f *fakeNode, stop func(), err error) {
	nc, err := nats.Connect(url, nats.Token(token))
	if err != nil {
		return nil, nil, fmt.Errorf("fake node connect: %w", err)
	}
	f = &fakeNode{
		nc:       nc,
		subj:     wire.NewSubjects(wire.DefaultPrefix),
		maxOps:   1000,
		pageSize: 2,
		data:     map[string]entry{},
		held:     map[string]chan struct{}{},
		arrived:  make(chan string, 16),
		failNext: map[string][2]string{},

		bySubject: map[string][]wire.BatchRequest{},
	}
	svc, err := micro.AddService(nc, micro.Config{Name: wire.ServiceName, Version: "0.0.0"})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("fake node service: %w", err)
	}
	f.svc = svc
	stop = func() { _ = svc.Stop(); nc.Close() }
	for _, ep := range []struct {
		name, subject string
		h             micro.HandlerFunc
	}{
		{"batch", f.subj.Batch(), f.onBatch},
		{"scan", f.subj.Scan(), f.onScan},
		{"status", f.subj.Status(), f.onStatus},
	} {
		if err := svc.AddEndpoint(ep.name, ep.h, micro.WithEndpointSubject(ep.subject)); err != nil {
			stop()
			return nil, nil, fmt.Errorf("fake node endpoint %s: %w", ep.name, err)
		}
	}
	if err := nc.Flush(); err != nil {
		stop()
		return nil, nil, err
	}
	return f, stop, nil
}

// hold makes messages carrying key wait until the returned release is called.
func (f *fakeNode) hold(key string) (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.held[key] = ch
	f.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

// fail makes the next message on endpoint ("batch", "scan", "status") get a
// whole-request error with code and description.
func (f *fakeNode) fail(endpoint, code, desc string) {
	f.mu.Lock()
	f.failNext[endpoint] = [2]string{code, desc}
	f.mu.Unlock()
}

func (f *fakeNode) takeFail(endpoint string) ([2]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.failNext[endpoint]
	delete(f.failNext, endpoint)
	return e, ok
}

// batchLog returns a copy of every batch received so far.
func (f *fakeNode) batchLog() []wire.BatchRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

func (f *fakeNode) onBatch(r micro.Request) {
	if e, ok := f.takeFail("batch"); ok {
		_ = r.Error(e[0], e[1], nil)
		return
	}
	var req wire.BatchRequest
	if err := wire.Unmarshal(r.Data(), &req); err != nil {
		_ = r.Error("400", "malformed batch: "+err.Error(), nil)
		return
	}
	f.batches.Add(1)
	f.ops.Add(int64(len(req.Ops)))
	for {
		cur := f.maxSeen.Load()
		if int64(len(req.Ops)) <= cur || f.maxSeen.CompareAndSwap(cur, int64(len(req.Ops))) {
			break
		}
	}
	if len(req.Ops) > f.maxOps {
		_ = r.Error("413", fmt.Sprintf("batch of %d operations over the limit of %d", len(req.Ops), f.maxOps), nil)
		return
	}
	f.mu.Lock()
	f.log = append(f.log, req)
	f.bySubject[r.Subject()] = append(f.bySubject[r.Subject()], req)
	var wait []chan struct{}
	for _, op := range req.Ops {
		if ch, ok := f.held[op.Key]; ok {
			wait = append(wait, ch)
			f.arrived <- op.Key
		}
	}
	f.mu.Unlock()
	if len(wait) == 0 {
		f.answer(r, &req)
		return
	}
	go func() { // held: answer later, without blocking other messages
		for _, ch := range wait {
			<-ch
		}
		f.answer(r, &req)
	}()
}

func (f *fakeNode) answer(r micro.Request, req *wire.BatchRequest) {
	resp := wire.BatchResponse{Results: make([]wire.Result, len(req.Ops))}
	f.mu.Lock()
	for i, op := range req.Ops {
		resp.Results[i] = f.apply(op)
	}
	f.mu.Unlock()
	data, err := wire.Marshal(&resp)
	if err != nil {
		_ = r.Error("500", err.Error(), nil)
		return
	}
	_ = r.Respond(data)
}

// apply runs one operation; f.mu is held.
func (f *fakeNode) apply(op wire.Request) wire.Result {
	if code, ok := strings.CutPrefix(op.Key, "code-"); ok {
		n, _ := strconv.Atoi(code)
		return wire.Result{Code: uint16(n), Error: "forced " + code}
	}
	cur, exists := f.data[op.Key]
	if exists && cur.expires != 0 && cur.expires <= time.Now().UnixMilli() {
		delete(f.data, op.Key)
		cur, exists = entry{}, false
	}
	if op.CAS != nil && *op.CAS != cur.version {
		return wire.Result{Code: wire.CodeConflict, Error: fmt.Sprintf("key %q is at version %d, not %d", op.Key, cur.version, *op.CAS)}
	}
	switch op.Op {
	case wire.OpGet:
		if !exists {
			return wire.Result{Code: wire.CodeNotFound, Error: fmt.Sprintf("key %q not found", op.Key)}
		}
		return wire.Result{Code: wire.CodeOK, Value: cur.value, Version: cur.version, Flags: cur.flags, Expires: cur.expires}
	case wire.OpSet:
		f.version++
		e := entry{value: op.Value, version: f.version, flags: op.Flags}
		if op.TTL > 0 {
			e.expires = time.Now().UnixMilli() + op.TTL
		}
		f.data[op.Key] = e
		return wire.Result{Code: wire.CodeOK, Version: e.version}
	case wire.OpDel:
		if !exists {
			return wire.Result{Code: wire.CodeOK}
		}
		f.version++
		delete(f.data, op.Key)
		return wire.Result{Code: wire.CodeOK, Version: f.version}
	}
	return wire.Result{Code: wire.CodeBadRequest, Error: fmt.Sprintf("unknown op %d", op.Op)}
}

func (f *fakeNode) onScan(r micro.Request) {
	if e, ok := f.takeFail("scan"); ok {
		_ = r.Error(e[0], e[1], nil)
		return
	}
	f.scans.Add(1)
	var req wire.ScanRequest
	if err := wire.Unmarshal(r.Data(), &req); err != nil {
		_ = r.Error("400", "malformed scan: "+err.Error(), nil)
		return
	}
	limit := req.Limit
	if limit <= 0 {
		limit = f.pageSize
	}
	f.mu.Lock()
	var keys []string
	for k := range f.data {
		if strings.HasPrefix(k, req.Prefix) && k > req.After {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var resp wire.ScanResponse
	if len(keys) > limit {
		keys, resp.More = keys[:limit], true
	}
	for _, k := range keys {
		e := f.data[k]
		out := wire.Entry{Key: k, Version: e.version, Flags: e.flags, Expires: e.expires}
		if !req.KeysOnly {
			out.Value = e.value
		}
		resp.Entries = append(resp.Entries, out)
	}
	f.mu.Unlock()
	data, err := wire.Marshal(&resp)
	if err != nil {
		_ = r.Error("500", err.Error(), nil)
		return
	}
	_ = r.Respond(data)
}

func (f *fakeNode) onStatus(r micro.Request) {
	if e, ok := f.takeFail("status"); ok {
		_ = r.Error(e[0], e[1], nil)
		return
	}
	f.mu.Lock()
	n := len(f.data)
	f.mu.Unlock()
	_ = r.RespondJSON(map[string]any{"name": "fake", "keys": n})
}

// serveTable makes the fake node answer the table subject with a table of
// partitions whose partition p is led by members[p % len(members)], member
// m having node ID "id-m", and serve the node batch subjects of the members
// in served (and of those served before); the others are gone. It may be
// called again to change the table.
func (f *fakeNode) serveTable(tb testing.TB, partitions int, members []string, served ...string) {
	tb.Helper()
	owners := make([][]string, partitions)
	ids := map[string]string{}
	for p := range owners {
		owners[p] = []string{members[p%len(members)]}
	}
	for _, m := range members {
		ids[m] = "id-" + m
	}
	data, err := json.Marshal(map[string]any{"node": "fake", "view": 1, "partitions": partitions, "replicas": 1, "owners": owners, "ids": ids})
	if err != nil {
		tb.Fatal(err)
	}
	f.mu.Lock()
	first := f.table == nil
	f.table = data
	f.mu.Unlock()
	if first {
		if err := f.svc.AddEndpoint("table", micro.HandlerFunc(f.onTable), micro.WithEndpointSubject(f.subj.Table())); err != nil {
			tb.Fatal(err)
		}
	}
	for _, m := range served {
		if err := f.svc.AddEndpoint("node-batch-"+m, micro.HandlerFunc(f.onBatch), micro.WithEndpointSubject(f.subj.NodeBatch(ids[m]))); err != nil {
			tb.Fatal(err)
		}
	}
	// The server must hold the new subscriptions before a client asks for
	// the table: unflushed, a client's first fetch could find no responder
	// and route nothing.
	if err := f.nc.Flush(); err != nil {
		tb.Fatal(err)
	}
}

func (f *fakeNode) onTable(r micro.Request) {
	f.tables.Add(1)
	f.mu.Lock()
	data := f.table
	f.mu.Unlock()
	_ = r.Respond(data)
}

// received returns a copy of the batches received on subject.
func (f *fakeNode) received(subject string) []wire.BatchRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bySubject[subject])
}
