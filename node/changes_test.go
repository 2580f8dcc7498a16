package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
)

func TestChangeEncodingDecodes(t *testing.T) {
	var stream []byte // every change below, back to back, as one message carries them
	var want []Change
	for _, n := range []int{0, 1, 31, 32, 255, 256, 65535, 65536} {
		for _, deleted := range []bool{false, true} {
			c := store.Change{Key: strings.Repeat("k", n), Version: 1<<63 + uint64(n), Deleted: deleted}
			data := appendChange(nil, c)
			got, err := DecodeChanges(data)
			if err != nil {
				t.Fatalf("key of %d bytes: %v", n, err)
			}
			if len(got) != 1 || got[0].Key != c.Key || got[0].Version != c.Version || got[0].Deleted != deleted {
				t.Fatalf("key of %d bytes, deleted %v: decoded %d changes", n, deleted, len(got))
			}
			var rc rawChange
			rest, ok := scanChange(data, &rc)
			if !ok || string(rc.key) != c.Key || rc.version != c.Version || rc.deleted != deleted || len(rest) != 0 {
				t.Fatalf("key of %d bytes: scanChange = %d-byte key, version %d, deleted %v, %d bytes left, %v", n, len(rc.key), rc.version, rc.deleted, len(rest), ok)
			}
			stream = appendChange(stream, c)
			want = append(want, Change{Key: c.Key, Version: c.Version, Deleted: deleted})
		}
	}
	got, err := DecodeChanges(stream)
	if err != nil || len(got) != len(want) {
		t.Fatalf("a message of %d changes decoded as %d, %v", len(want), len(got), err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("change %d of a message: %d-byte key, version %d; want %d bytes, version %d", i, len(got[i].Key), got[i].Version, len(want[i].Key), want[i].Version)
		}
	}
	for _, bad := range [][]byte{[]byte("not msgpack"), nil, append(appendChange(nil, store.Change{Key: "k"}), 0xc1)} {
		if cs, err := DecodeChanges(bad); err == nil {
			t.Fatalf("DecodeChanges took % x: %+v", bad, cs)
		}
	}
	// Another encoder's msgpack (here, maps with the version as a short
	// integer) is not read in place, but decodes, also after changes that are.
	other, err := wire.Marshal(map[string]any{"k": "k", "ver": 7, "del": true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := scanChange(other, new(rawChange)); ok {
		t.Fatalf("scanChange read a layout it does not know: % x", other)
	}
	mixed := append(appendChange(nil, store.Change{Key: "a", Version: 5}), other...)
	mixed = append(mixed, other...)
	got, err = DecodeChanges(mixed)
	if err != nil || len(got) != 3 || got[0] != (Change{Key: "a", Version: 5}) || got[2] != (Change{Key: "k", Version: 7, Deleted: true}) {
		t.Fatalf("DecodeChanges of mixed encodings = %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {0x83}, appendChange(nil, store.Change{Key: "k"})[:10]} {
		if _, ok := scanChange(bad, new(rawChange)); ok {
			t.Fatalf("scanChange took % x", bad)
		}
	}
}

func TestWaitersWakeOnTheirKeyOrPrefix(t *testing.T) {
	var ws waiters
	ws.init()
	exact := ws.add("app/a", false)
	prefix := ws.add("app/", true)
	all := ws.add("", true)
	other := ws.add("db/", true)
	woken := func(w *waiter) bool {
		select {
		case <-w.wake:
			return true
		default:
			return false
		}
	}
	tests := []struct {
		key  string
		want [4]bool // exact, prefix, all, other
	}{
		{"app/a", [4]bool{true, true, true, false}},
		{"app/ab", [4]bool{false, true, true, false}},
		{"app", [4]bool{false, false, true, false}},
		{"db/x", [4]bool{false, false, true, true}},
	}
	for _, tt := range tests {
		ws.notify(tt.key)
		ws.notify(tt.key) // a second change before the waiter reads: one wake-up
		got := [4]bool{woken(exact), woken(prefix), woken(all), woken(other)}
		if got != tt.want {
			t.Errorf("change of %q woke %v, want %v", tt.key, got, tt.want)
		}
	}
	for _, w := range []*waiter{exact, prefix, all, other} {
		ws.remove(w)
	}
	if n := ws.count.Load(); n != 0 || len(ws.keys) != 0 || len(ws.prefixes) != 0 {
		t.Fatalf("after removing every waiter: count %d, keys %v, prefixes %d", n, ws.keys, len(ws.prefixes))
	}
	ws.close()
	ws.close() // idempotent
	select {
	case <-ws.stopping():
	default:
		t.Fatal("close did not signal stopping")
	}
}

func TestParseBlocking(t *testing.T) {
	tests := []struct {
		query    string
		index    uint64
		min, max time.Duration
		bad      bool
	}{
		{"", 0, DefaultBlockingWait, DefaultBlockingWait * 17 / 16, false},
		{"index=7", 7, DefaultBlockingWait, DefaultBlockingWait * 17 / 16, false},
		{"index=7&wait=10s", 7, 10 * time.Second, 10 * time.Second * 17 / 16, false},
		{"index=7&wait=5000ms", 7, 5 * time.Second, 5 * time.Second * 17 / 16, false},
		{"index=7&wait=1h", 7, MaxBlockingWait, MaxBlockingWait * 17 / 16, false},
		{"index=x", 0, 0, 0, true},
		{"index=-1", 0, 0, 0, true},
		{"index=1&wait=10", 0, 0, 0, true}, // consul wants a unit too
		{"wait=-1s", 0, 0, 0, true},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		b, err := parseBlocking(q)
		if tt.bad {
			if codeOf(err) != 400 {
				t.Errorf("%q: %v, want a 400", tt.query, err)
			}
			continue
		}
		if err != nil || b.index != tt.index || b.wait < tt.min || b.wait > tt.max {
			t.Errorf("%q = %+v, %v; want index %d, wait in [%s, %s]", tt.query, b, err, tt.index, tt.min, tt.max)
		}
	}
}

func TestCollapseKeys(t *testing.T) {
	es := func(keys ...string) []kvEntry {
		out := make([]kvEntry, len(keys))
		for i, k := range keys {
			out[i] = kvEntry{Key: k}
		}
		return out
	}
	all := es("a/b-c", "a/b/1", "a/b/2", "a/b/x/y", "a/c", "a/d/")
	tests := []struct {
		prefix, sep string
		want        string
	}{
		{"a/", "", "a/b-c a/b/1 a/b/2 a/b/x/y a/c a/d/"},
		{"a/", "/", "a/b-c a/b/ a/c a/d/"},
		{"a/b", "/", "a/b-c a/b/"},
		{"a/b/", "/", "a/b/1 a/b/2 a/b/x/"},
		{"a/", "-", "a/b- a/b/1 a/b/2 a/b/x/y a/c a/d/"},
	}
	for _, tt := range tests {
		var in []kvEntry
		for _, e := range all {
			if strings.HasPrefix(e.Key, tt.prefix) {
				in = append(in, e)
			}
		}
		if got := strings.Join(collapseKeys(in, tt.prefix, tt.sep), " "); got != tt.want {
			t.Errorf("keys under %q, separator %q = %q, want %q", tt.prefix, tt.sep, got, tt.want)
		}
	}
}

// startTestNode starts a single node on random ports, filled with keys keys.
func startTestNode(tb testing.TB, keys int) *Node {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Name = "t"
	cfg.Listen = "127.0.0.1:-1"
	cfg.HTTP = HTTPOff
	n, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if err := n.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(n.Stop)
	for i := range keys {
		if _, err := n.store.Set(store.SetRequest{Key: "key" + strconv.Itoa(i), Value: make([]byte, 100)}); err != nil {
			tb.Fatal(err)
		}
	}
	return n
}

func TestTheFeedAnnouncesAppliedWrites(t *testing.T) {
	n := startTestNode(t, 0)
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(n.subj.Changes())
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	req := func(subject string, data []byte) uint64 {
		t.Helper()
		resp, err := nc.Request(subject, data, 5*time.Second)
		if err != nil || resp.Header.Get("Nats-Service-Error-Code") != "" {
			t.Fatalf("%s: %v %v", subject, err, resp.Header)
		}
		v, _ := strconv.ParseUint(resp.Header.Get(hdrVersion), 10, 64)
		return v
	}
	set := req("roost.set.a.b", []byte("v"))
	req("roost.del.never", nil) // absent: no change
	del := req("roost.del.a.b", nil)
	// One message may carry several changes, in the order they were applied.
	want := []Change{{Key: "a.b", Version: set}, {Key: "a.b", Version: del, Deleted: true}}
	var got []Change
	for len(got) < len(want) {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("waiting for %+v: %v", want[len(got)], err)
		}
		cs, err := DecodeChanges(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Seq == 0 || c.Term == 0 {
				t.Fatalf("a change without its log ID: %+v", c)
			}
			c.Partition, c.Term, c.Seq = 0, 0, 0 // changes_seq_test.go checks them
			got = append(got, c)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("feed carried %+v; want %+v", got, want)
	}
	if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("an extra change on the feed: %q", m.Data)
	}
}

// BenchmarkSetWithFeed measures what announcing changes costs a set through
// the NATS text API: the same node, 32 requesters, with the store's change
// hook and the replicator's announcements on (the product) and off,
// alternating runs within one process so that the machine's noise hits both
// alike. Compare with benchstat.
func BenchmarkSetWithFeed(b *testing.B) {
	const keys, concurrency = 100_000, 32
	n := startTestNode(b, keys)
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	value := make([]byte, 100)
	for _, mode := range []string{"feed-on", "feed-off"} {
		b.Run(mode, func(b *testing.B) {
			if mode == "feed-off" {
				n.store.Notify(nil)
				defer n.store.Notify(n.feed.onChange)
				n.repl.Announce(nil) // the replicator announces the writes it logs (changes_seq.go)
				defer n.repl.Announce(n.feed.onLogged)
			}
			var next atomic.Int64
			var failed atomic.Value
			var wg sync.WaitGroup
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for g := range concurrency {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(g), 1))
					for next.Add(1) <= int64(b.N) {
						msg := &nats.Msg{Subject: "roost.set.key" + strconv.Itoa(rng.IntN(keys)), Data: value}
						if _, err := nc.RequestMsgWithContext(context.Background(), msg); err != nil {
							failed.Store(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatal(err)
			}
			// CPU time per set, of the whole process (node and client): less
			// swayed than wall time by other jobs on a shared machine.
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOnChange is the change hook alone: encode and publish one change
// (nobody listens, as on a single node).
func BenchmarkOnChange(b *testing.B) {
	n := startTestNode(b, 0)
	c := store.Change{Key: "key12345", Version: 1 << 50}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		n.feed.onChange(c)
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

func TestObserveIgnoresVersionsFarAhead(t *testing.T) {
	n := startTestNode(t, 0)
	soon := uint64(time.Now().Add(10 * time.Second).UnixMicro())
	n.observe(soon) // a peer slightly ahead: adopted
	e, err := n.store.Set(store.SetRequest{Key: "k"})
	if err != nil || e.Version <= soon {
		t.Fatalf("version %d after observing %d: %v", e.Version, soon, err)
	}
	bogus := uint64(time.Now().Add(24 * time.Hour).UnixMicro())
	n.observe(bogus) // a client's made-up index: ignored
	if e, _ := n.store.Set(store.SetRequest{Key: "k"}); e.Version >= bogus {
		t.Fatalf("version %d jumped to a made-up index %d", e.Version, bogus)
	}
}

// TestFeedGathersChanges: changes queued while the publisher is busy leave
// together, in order, in messages of at most about feedMessageMax bytes.
func TestFeedGathersChanges(t *testing.T) {
	n := startTestNode(t, 0)
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	const subject = "test.feed"
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// A feed whose publisher is not running: the test publishes by hand.
	f := &feed{nc: nc, subject: subject, kick: make(chan struct{}, 1)}
	f.waiters.init()
	const changes = 100
	key := func(i int) string { return fmt.Sprintf("%04d", i) + strings.Repeat("k", 2000) }
	for i := range changes {
		f.onChange(store.Change{Key: key(i), Version: uint64(i + 1)})
	}
	f.publish(nil, nil)
	var got []Change
	messages := 0
	for len(got) < changes {
		m, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatalf("%d of %d changes arrived: %v", len(got), changes, err)
		}
		if len(m.Data) > feedMessageMax+2100 {
			t.Fatalf("a message of %d bytes, over the bound of %d and one change", len(m.Data), feedMessageMax)
		}
		cs, err := DecodeChanges(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, cs...)
		messages++
	}
	for i, c := range got {
		if c.Key != key(i) || c.Version != uint64(i+1) {
			t.Fatalf("change %d is %.4s… version %d, want %.4s… version %d", i, c.Key, c.Version, key(i), i+1)
		}
	}
	// 100 changes of 2 kB are about 200 kB: four messages of at most 64 kB.
	if messages < 3 || messages > 5 {
		t.Fatalf("%d changes of 2 kB took %d messages, want about 4", changes, messages)
	}
}

// TestWaitersFilterByFirstByte: a change whose key no waiter's key or
// prefix can match (by its first byte) takes no lock and wakes nobody;
// the filter follows waiters in and out, several on one byte included,
// and the empty prefix lets every key through. Roost's own waiters (on
// reserved prefixes, NUL first) leave user keys out.
func TestWaitersFilterByFirstByte(t *testing.T) {
	var ws waiters
	ws.init()
	catalog := ws.add(svcPrefix, true)
	if ws.concerns('a') || !ws.concerns(0) {
		t.Fatal("a waiter on the reserved prefix lets user keys through, or not its own")
	}
	a1 := ws.add("app/", true)
	a2 := ws.add("a", false)
	for _, tt := range []struct {
		key  byte
		want bool
	}{{'a', true}, {'b', false}, {0, true}, {0xff, false}, {'A', false}} {
		if got := ws.concerns(tt.key); got != tt.want {
			t.Errorf("first byte %q: concerns = %v, want %v", tt.key, got, tt.want)
		}
	}
	ws.remove(a1)
	if !ws.concerns('a') {
		t.Fatal("removing one of two waiters on 'a' closed the filter to the other")
	}
	ws.notifyBytes([]byte("a"))
	select {
	case <-a2.wake:
	default:
		t.Fatal("the waiter left on key a was not woken")
	}
	ws.remove(a2)
	if ws.concerns('a') {
		t.Fatal("no waiter on 'a' left, and the filter still lets it through")
	}
	all := ws.add("", true)
	if !ws.concerns('z') || !ws.concerns(0xff) {
		t.Fatal("a waiter on the empty prefix does not see every key")
	}
	ws.notifyBytes([]byte("zebra"))
	select {
	case <-all.wake:
	default:
		t.Fatal("the waiter on every key was not woken")
	}
	ws.remove(all)
	ws.remove(catalog)
	for b := range 256 {
		if ws.concerns(byte(b)) {
			t.Fatalf("no waiter left and byte %d still passes", b)
		}
	}
}
