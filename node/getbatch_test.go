package node

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
)

// batchGet sends one batch of gets of keys over NATS and returns its
// results.
func batchGet(t *testing.T, nc *nats.Conn, n *Node, keys ...string) []wire.Result {
	t.Helper()
	br := wire.BatchRequest{Ops: make([]wire.Request, len(keys))}
	for i, k := range keys {
		br.Ops[i] = wire.Request{Op: wire.OpGet, Key: k}
	}
	data, err := wire.Marshal(&br)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := nc.Request(n.subj.Batch(), data, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var resp wire.BatchResponse
	if err := wire.Unmarshal(msg.Data, &resp); err != nil {
		t.Fatalf("reply %q: %v", msg.Data, err)
	}
	if len(resp.Results) != len(keys) {
		t.Fatalf("%d results for %d gets", len(resp.Results), len(keys))
	}
	return resp.Results
}

// TestBatchOfGets: a batch of plain gets takes the one-pass read, and each
// get is answered as it would be alone: hits with their value, version and
// flags, misses 404, bad keys 400, a key asked twice twice.
func TestBatchOfGets(t *testing.T) {
	n := startTestNode(t, 0)
	set := func(key, value string, flags uint64) store.Entry {
		e, err := n.store.Set(store.SetRequest{Key: key, Value: []byte(value), Flags: flags})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b, empty := set("a", "one", 5), set("b", "two", 0), set("empty", "", 0)
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if !n.batchReadable([]wire.Request{{Op: wire.OpGet, Key: "a"}}, true) {
		t.Fatal("a batch of gets would not take the one-pass read")
	}
	hits0 := n.store.Stats().Hits

	got := batchGet(t, nc, n, "a", "missing", "", "b", "x.*", "a", "empty", "\x00own")
	want := []wire.Result{
		{Code: wire.CodeOK, Value: []byte("one"), Version: a.Version, Flags: 5},
		{Code: wire.CodeNotFound},
		{Code: wire.CodeBadRequest},
		{Code: wire.CodeOK, Value: []byte("two"), Version: b.Version},
		{Code: wire.CodeBadRequest},
		{Code: wire.CodeOK, Value: []byte("one"), Version: a.Version, Flags: 5},
		{Code: wire.CodeOK, Version: empty.Version},
		{Code: wire.CodeBadRequest},
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Code != w.Code || string(g.Value) != string(w.Value) || g.Version != w.Version || g.Flags != w.Flags {
			t.Errorf("get %d: %d %q v%d f%d (%s), want %d %q v%d f%d", i, g.Code, g.Value, g.Version, g.Flags, g.Error, w.Code, w.Value, w.Version, w.Flags)
		}
		if w.Code != wire.CodeOK && g.Error == "" {
			t.Errorf("get %d: code %d without a reason", i, g.Code)
		}
	}
	if hits := n.store.Stats().Hits - hits0; hits != 4 {
		t.Errorf("the store counted %d hits, want 4", hits)
	}
}

// TestBatchOfGetsAsksLoaders: in the one-pass read, a miss whose key a
// loader serves is loaded (the batch's loads at once), a miss with only an
// observer subscribed is a plain 404, and a hit asks nobody.
func TestBatchOfGetsAsksLoaders(t *testing.T) {
	n := startTestNode(t, 0)
	if _, err := n.store.Set(store.SetRequest{Key: "ld.here", Value: []byte("stored")}); err != nil {
		t.Fatal(err)
	}
	loaderConn, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer loaderConn.Close()
	asked := make(chan string, 16)
	if _, err := loaderConn.Subscribe(n.subj.Load("ld.>"), func(m *nats.Msg) {
		key := strings.TrimPrefix(m.Subject, n.subj.Load(""))
		asked <- key
		_ = m.Respond([]byte("loaded " + key))
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := loaderConn.Subscribe(">", func(*nats.Msg) {}); err != nil { // an observer: never answers
		t.Fatal(err)
	}
	if err := loaderConn.Flush(); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if n.loads.known.Load() != 0 {
		t.Fatal("load state known before the batch: it would not take the one-pass read")
	}

	start := time.Now()
	got := batchGet(t, nc, n, "ld.here", "ld.1", "other", "ld.2")
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the batch took %s: the observer was taken for a loader", took)
	}
	want := []struct {
		code  uint16
		value string
	}{{wire.CodeOK, "stored"}, {wire.CodeOK, "loaded ld.1"}, {wire.CodeNotFound, ""}, {wire.CodeOK, "loaded ld.2"}}
	for i, w := range want {
		if got[i].Code != w.code || string(got[i].Value) != w.value {
			t.Errorf("get %d: %d %q (%s), want %d %q", i, got[i].Code, got[i].Value, got[i].Error, w.code, w.value)
		}
	}
	close(asked)
	var keys []string
	for k := range asked {
		keys = append(keys, k)
	}
	if len(keys) != 2 {
		t.Errorf("the loader was asked for %v, want ld.1 and ld.2 once each", keys)
	}
	if e, err := n.store.Get("ld.1"); err != nil || string(e.Value) != "loaded ld.1" {
		t.Errorf("the loaded value was not stored: %q, %v", e.Value, err)
	}
}

// TestObserveManySamples: a batch's reads are sampled for the hot keys as
// one by one, one in hotSampleEvery, each key's draw its own.
func TestObserveManySamples(t *testing.T) {
	if 1<<hotSampleBits != hotSampleEvery {
		t.Fatalf("hotSampleBits %d does not match hotSampleEvery %d", hotSampleBits, hotSampleEvery)
	}
	h := newHotKeys()
	keys := make([]string, 100) // not a multiple of 16: the draws cross batches
	for i := range keys {
		keys[i] = fmt.Sprint("k", i%10)
	}
	const batches = 4000
	var sumSq float64 // of the reads sampled per batch
	for range batches {
		before := h.sampled
		h.observeMany(keys)
		d := float64(h.sampled - before)
		sumSq += d * d
	}
	p := 1.0 / hotSampleEvery
	want := float64(batches*len(keys)) * p
	if got := float64(h.sampled); got < 0.95*want || got > 1.05*want {
		t.Errorf("sampled %v reads of %d, want about %v", got, batches*len(keys), want)
	}
	// Independent draws: the count per batch is binomial, of variance
	// n·p·(1-p) (5.9 here); draws shared by several keys would spread it.
	mean := float64(h.sampled) / batches
	variance, binomial := sumSq/batches-mean*mean, float64(len(keys))*p*(1-p)
	if variance > 1.5*binomial || variance < binomial/1.5 {
		t.Errorf("per-batch sample counts vary by %.1f, want about %.1f: the keys' draws are not independent", variance, binomial)
	}
	top := h.sum.Top(10)
	if len(top) != 10 {
		t.Fatalf("the summary holds %d keys, want the 10 read", len(top))
	}
}
