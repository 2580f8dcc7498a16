package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/roostkv/roost/node"
	"github.com/roostkv/roost/partition"
)

// consulKV is the official consul client's KV API pointed at node n.
func consulKV(t *testing.T, n *node.Node, token string) *api.KV {
	t.Helper()
	c, err := api.NewClient(&api.Config{Address: n.HTTPAddr(), Token: token})
	if err != nil {
		t.Fatalf("consul api.NewClient: %v", err)
	}
	return c.KV()
}

// keyLedBy returns a key made from base whose partition the node named
// primary leads in n's table.
func keyLedBy(t *testing.T, n *node.Node, base, primary string) string {
	t.Helper()
	table := n.Table()
	for i := range 10000 {
		key := fmt.Sprintf("%s%d", base, i)
		if table.Owners[partition.Of(key, table.Partitions)][0] == primary {
			return key
		}
	}
	t.Fatalf("no key %s* led by %s", base, primary)
	return ""
}

func mustPut(t *testing.T, kv *api.KV, p *api.KVPair) {
	t.Helper()
	if _, err := kv.Put(p, nil); err != nil {
		t.Fatalf("Put %s: %v", p.Key, err)
	}
}

func mustGet(t *testing.T, kv *api.KV, key string, q *api.QueryOptions) (*api.KVPair, *api.QueryMeta) {
	t.Helper()
	p, qm, err := kv.Get(key, q)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return p, qm
}

func TestConsulKV(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	kv1, kv2, kv3 := consulKV(t, nodes[0], ""), consulKV(t, nodes[1], ""), consulKV(t, nodes[2], "")

	t.Run("put and get through other nodes", func(t *testing.T) {
		mustPut(t, kv1, &api.KVPair{Key: "app/config", Value: []byte("v1"), Flags: 42})
		p, qm := mustGet(t, kv2, "app/config", nil)
		if p == nil || string(p.Value) != "v1" || p.Flags != 42 || p.CreateIndex == 0 || p.ModifyIndex != p.CreateIndex {
			t.Fatalf("Get after the first put = %+v", p)
		}
		if qm.LastIndex != p.ModifyIndex || !qm.KnownLeader || qm.LastContact != 0 {
			t.Fatalf("query meta %+v, want LastIndex = ModifyIndex %d and a known leader", qm, p.ModifyIndex)
		}
		mustPut(t, kv3, &api.KVPair{Key: "app/config", Value: []byte("v2")})
		p2, _ := mustGet(t, kv1, "app/config", nil)
		if string(p2.Value) != "v2" || p2.Flags != 0 || p2.CreateIndex != p.CreateIndex || p2.ModifyIndex <= p.ModifyIndex {
			t.Fatalf("Get after the second put = %+v (first %+v)", p2, p)
		}
		// An empty value comes back empty.
		mustPut(t, kv1, &api.KVPair{Key: "app/empty"})
		if p, _ := mustGet(t, kv3, "app/empty", nil); p == nil || len(p.Value) != 0 {
			t.Fatalf("Get of an empty value = %+v", p)
		}
	})

	t.Run("list and keys span every node", func(t *testing.T) {
		want := []string{}
		for i := range 40 {
			key := fmt.Sprintf("list/k%02d", i)
			if i%4 == 0 {
				key = fmt.Sprintf("list/dir%d/k%02d", i%8, i)
			}
			mustPut(t, []*api.KV{kv1, kv2, kv3}[i%3], &api.KVPair{Key: key, Value: []byte("v" + key)})
			want = append(want, key)
		}
		slices.Sort(want)
		holders := 0
		for _, n := range nodes {
			if n.StoreStats().Keys > 0 {
				holders++
			}
		}
		if holders != 3 {
			t.Fatalf("the keys are on %d nodes; the test needs them spread", holders)
		}
		for i, kv := range []*api.KV{kv1, kv2, kv3} {
			pairs, qm, err := kv.List("list/", nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var top uint64
			for _, p := range pairs {
				got = append(got, p.Key)
				if string(p.Value) != "v"+p.Key {
					t.Fatalf("List through n%d: %s = %q", i+1, p.Key, p.Value)
				}
				top = max(top, p.ModifyIndex)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("List through n%d = %v\nwant %v", i+1, got, want)
			}
			if qm.LastIndex < top {
				t.Fatalf("List index %d below its newest entry's %d", qm.LastIndex, top)
			}
			keys, _, err := kv.Keys("list/", "", nil)
			if err != nil || !slices.Equal(keys, want) {
				t.Fatalf("Keys through n%d = %v, %v", i+1, keys, err)
			}
		}
		keys, _, err := kv2.Keys("list/", "/", nil)
		if err != nil {
			t.Fatal(err)
		}
		wantSep := []string{"list/dir0/", "list/dir4/"}
		for _, k := range want {
			if !strings.Contains(k, "dir") {
				wantSep = append(wantSep, k)
			}
		}
		slices.Sort(wantSep)
		if !slices.Equal(keys, wantSep) {
			t.Fatalf("Keys with separator = %v\nwant %v", keys, wantSep)
		}
		if pairs, _, err := kv1.List("nothing-here/", nil); err != nil || pairs != nil {
			t.Fatalf("List of an empty prefix = %v, %v", pairs, err)
		}
	})

	t.Run("cas", func(t *testing.T) {
		mustPut(t, kv1, &api.KVPair{Key: "cas/k", Value: []byte("1")})
		p, _ := mustGet(t, kv2, "cas/k", nil)
		ok, _, err := kv3.CAS(&api.KVPair{Key: "cas/k", Value: []byte("2"), ModifyIndex: p.ModifyIndex}, nil)
		if err != nil || !ok {
			t.Fatalf("CAS at the current index = %v, %v", ok, err)
		}
		ok, _, err = kv2.CAS(&api.KVPair{Key: "cas/k", Value: []byte("3"), ModifyIndex: p.ModifyIndex}, nil)
		if err != nil || ok {
			t.Fatalf("CAS at a stale index = %v, %v; want false", ok, err)
		}
		ok, _, err = kv1.CAS(&api.KVPair{Key: "cas/k", Value: []byte("4"), ModifyIndex: 0}, nil)
		if err != nil || ok {
			t.Fatalf("CAS 0 on an existing key = %v, %v; want false", ok, err)
		}
		if p, _ := mustGet(t, kv1, "cas/k", nil); string(p.Value) != "2" {
			t.Fatalf("after the CAS round: %q, want 2", p.Value)
		}
		ok, _, err = kv1.CAS(&api.KVPair{Key: "cas/new", Value: []byte("n"), ModifyIndex: 0}, nil)
		if err != nil || !ok {
			t.Fatalf("CAS 0 on a new key = %v, %v", ok, err)
		}
		cur, _ := mustGet(t, kv3, "cas/k", nil)
		ok, _, err = kv2.DeleteCAS(&api.KVPair{Key: "cas/k", ModifyIndex: p.ModifyIndex}, nil)
		if err != nil || ok {
			t.Fatalf("DeleteCAS at a stale index = %v, %v; want false", ok, err)
		}
		ok, _, err = kv2.DeleteCAS(&api.KVPair{Key: "cas/k", ModifyIndex: cur.ModifyIndex}, nil)
		if err != nil || !ok {
			t.Fatalf("DeleteCAS at the current index = %v, %v", ok, err)
		}
		if p, _ := mustGet(t, kv1, "cas/k", nil); p != nil {
			t.Fatalf("deleted key still there: %+v", p)
		}
	})

	t.Run("delete and the index of a missing key", func(t *testing.T) {
		mustPut(t, kv1, &api.KVPair{Key: "del/k", Value: []byte("v")})
		p, _ := mustGet(t, kv1, "del/k", nil)
		if _, err := kv2.Delete("del/k", nil); err != nil {
			t.Fatal(err)
		}
		gone, qm := mustGet(t, kv3, "del/k", nil)
		if gone != nil {
			t.Fatalf("Get after Delete = %+v", gone)
		}
		// The 404 carries the delete's index: above the key's last version.
		deleted := qm.LastIndex
		if deleted <= p.ModifyIndex {
			t.Fatalf("404 index %d, want the delete's, above the key's %d", deleted, p.ModifyIndex)
		}
		resp, err := http.Get("http://" + nodes[0].HTTPAddr() + "/v1/kv/del/k")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Consul-Index"); resp.StatusCode != 404 || got != strconv.FormatUint(deleted, 10) {
			t.Fatalf("raw GET through n1: %d, X-Consul-Index %q; want 404 with %d", resp.StatusCode, got, deleted)
		}
		if _, qm := mustGet(t, kv3, "del/never-written", nil); qm.LastIndex != 1 {
			t.Fatalf("index of a key never written = %d, want 1", qm.LastIndex)
		}
	})

	t.Run("delete tree", func(t *testing.T) {
		for i := range 30 {
			mustPut(t, kv1, &api.KVPair{Key: fmt.Sprintf("tree/%d", i), Value: []byte("v")})
		}
		mustPut(t, kv1, &api.KVPair{Key: "treehouse", Value: []byte("stays")})
		if _, err := kv2.DeleteTree("tree/", nil); err != nil {
			t.Fatal(err)
		}
		if pairs, _, err := kv3.List("tree/", nil); err != nil || len(pairs) != 0 {
			t.Fatalf("List after DeleteTree = %d pairs, %v", len(pairs), err)
		}
		if p, _ := mustGet(t, kv3, "treehouse", nil); p == nil {
			t.Fatal("DeleteTree(tree/) deleted treehouse")
		}
	})
}

func TestConsulKVBlockingGetWokenThroughAnotherNode(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	// The query waits on n1, the put goes through n2, the key lives on n3:
	// the wake-up must cross the bus.
	key := keyLedBy(t, nodes[0], "watched/", nodes[2].Name())
	kv1, kv2 := consulKV(t, nodes[0], ""), consulKV(t, nodes[1], "")
	mustPut(t, kv2, &api.KVPair{Key: key, Value: []byte("before")})
	p, qm := mustGet(t, kv1, key, nil)

	// A blocking query with nothing happening waits out its wait.
	start := time.Now()
	same, qm2 := mustGet(t, kv1, key, &api.QueryOptions{WaitIndex: qm.LastIndex, WaitTime: 300 * time.Millisecond})
	if waited := time.Since(start); waited < 300*time.Millisecond || same == nil || qm2.LastIndex != qm.LastIndex {
		t.Fatalf("idle blocking query returned after %s with index %d (was %d)", waited, qm2.LastIndex, qm.LastIndex)
	}

	type result struct {
		pair *api.KVPair
		meta *api.QueryMeta
		err  error
		at   time.Time
	}
	done := make(chan result, 1)
	const wait = 30 * time.Second
	go func() {
		p, qm, err := kv1.Get(key, &api.QueryOptions{WaitIndex: qm.LastIndex, WaitTime: wait})
		done <- result{p, qm, err, time.Now()}
	}()
	eventually(t, 5*time.Second, func() error {
		if n := nodes[0].BlockingQueries(); n != 1 {
			return fmt.Errorf("%d blocking queries on n1, want 1", n)
		}
		return nil
	})
	select {
	case r := <-done:
		t.Fatalf("the blocking query returned before any change: %+v, %v", r.pair, r.err)
	default:
	}
	put := time.Now()
	mustPut(t, kv2, &api.KVPair{Key: key, Value: []byte("after")})
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.at.Before(put) || r.at.Sub(put) > 5*time.Second {
			t.Fatalf("returned %s after the put", r.at.Sub(put))
		}
		if r.pair == nil || string(r.pair.Value) != "after" || r.pair.ModifyIndex <= p.ModifyIndex || r.meta.LastIndex != r.pair.ModifyIndex {
			t.Fatalf("woken with %+v, index %d", r.pair, r.meta.LastIndex)
		}
	case <-time.After(wait / 2):
		t.Fatal("the blocking query was not woken by the put")
	}
	if n := nodes[0].BlockingQueries(); n != 0 {
		t.Fatalf("%d blocking queries left on n1", n)
	}
}

func TestConsulKVBlockingListWokenByDeleteThroughAnotherNode(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	kv1, kv2 := consulKV(t, nodes[0], ""), consulKV(t, nodes[1], "")
	victim := keyLedBy(t, nodes[0], "svc/web/", nodes[2].Name())
	for _, k := range []string{"svc/web/a", "svc/web/b", victim, "svc/db/a"} {
		mustPut(t, kv1, &api.KVPair{Key: k, Value: []byte("up")})
	}
	pairs, qm, err := kv1.List("svc/web/", nil)
	if err != nil || len(pairs) != 3 {
		t.Fatalf("List = %d pairs, %v", len(pairs), err)
	}

	type result struct {
		pairs api.KVPairs
		meta  *api.QueryMeta
		err   error
	}
	done := make(chan result, 1)
	go func() {
		pairs, qm, err := kv1.List("svc/web/", &api.QueryOptions{WaitIndex: qm.LastIndex, WaitTime: 30 * time.Second})
		done <- result{pairs, qm, err}
	}()
	eventually(t, 5*time.Second, func() error {
		if n := nodes[0].BlockingQueries(); n != 1 {
			return fmt.Errorf("%d blocking queries on n1, want 1", n)
		}
		return nil
	})
	// A change outside the prefix does not answer it.
	mustPut(t, kv2, &api.KVPair{Key: "svc/db/a", Value: []byte("down")})
	if _, err := kv2.Delete(victim, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		var keys []string
		for _, p := range r.pairs {
			keys = append(keys, p.Key)
		}
		if slices.Contains(keys, victim) || len(keys) != 2 {
			t.Fatalf("woken with %v; %s was deleted", keys, victim)
		}
		if r.meta.LastIndex <= qm.LastIndex {
			t.Fatalf("index %d after the delete, was %d", r.meta.LastIndex, qm.LastIndex)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the blocking List was not woken by the delete")
	}
}

func TestConsulKVAndNATSShareTheKeys(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	nc := connect(t, nodes[0])
	kv := consulKV(t, nodes[1], "")

	set := request(t, nc, "roost.set.shared.from-nats", []byte("hello from nats"), "Roost-Flags", "9")
	wantCode(t, "set over NATS", set, 200)
	p, _ := mustGet(t, kv, "shared.from-nats", nil)
	if p == nil || string(p.Value) != "hello from nats" || p.Flags != 9 || p.ModifyIndex != set.version(t) {
		t.Fatalf("HTTP Get of a NATS write = %+v, want version %d", p, set.version(t))
	}

	mustPut(t, consulKV(t, nodes[2], ""), &api.KVPair{Key: "shared.from-http", Value: []byte("hello from http"), Flags: 5})
	p, _ = mustGet(t, kv, "shared.from-http", nil)
	get := request(t, nc, "roost.get.shared.from-http", nil)
	wantCode(t, "get over NATS", get, 200)
	if string(get.body) != "hello from http" || get.hdr.Get("Roost-Flags") != "5" || get.version(t) != p.ModifyIndex {
		t.Fatalf("NATS get of an HTTP write = %q flags %s version %d, want version %d", get.body, get.hdr.Get("Roost-Flags"), get.version(t), p.ModifyIndex)
	}
}

func TestConsulKVBadInput(t *testing.T) {
	t.Parallel()
	const token = "s3cret"
	n := startNode(t, func(c *node.Config) {
		c.Token = token
		c.MaxValue = 1024
		c.MaxKey = 64
	})
	base := "http://" + n.HTTPAddr() + "/v1/kv/"
	do := func(method, path string, body io.Reader, header ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(text)
	}
	auth := []string{"X-Consul-Token", token}
	if code, _ := do("PUT", "ok", strings.NewReader("fine"), auth...); code != 200 {
		t.Fatalf("PUT ok: %d", code)
	}

	tooBig := bytes.Repeat([]byte("x"), 1025)
	tests := []struct {
		name   string
		method string
		path   string
		body   io.Reader
		header []string
		want   int
		text   string // in the error message
	}{
		{"bad index", "GET", "ok?index=abc", nil, auth, 400, "index"},
		{"negative index", "GET", "ok?index=-1", nil, auth, 400, "index"},
		{"bad wait", "GET", "ok?index=1&wait=banana", nil, auth, 400, "wait"},
		{"negative wait", "GET", "ok?index=1&wait=-5s", nil, auth, 400, "wait"},
		{"bad flags", "PUT", "k?flags=x", strings.NewReader("v"), auth, 400, "flags"},
		{"negative flags", "PUT", "k?flags=-1", strings.NewReader("v"), auth, 400, "flags"},
		{"bad cas on put", "PUT", "k?cas=abc", strings.NewReader("v"), auth, 400, "cas"},
		{"bad cas on delete", "DELETE", "k?cas=1.5", nil, auth, 400, "cas"},
		{"recurse and cas", "DELETE", "k?recurse&cas=1", nil, auth, 400, "conflicting"},
		{"bad ttl", "PUT", "k?ttl=soon", strings.NewReader("v"), auth, 400, "TTL"},
		{"key over the limit", "PUT", strings.Repeat("k", 65), strings.NewReader("v"), auth, 400, "limit"},
		{"get of a key over the limit", "GET", strings.Repeat("k", 65), nil, auth, 400, "limit"},
		{"missing key", "GET", "", nil, auth, 400, "empty key"},
		{"sessions", "PUT", "k?acquire=abc", strings.NewReader("v"), auth, 400, "session"},
		{"body over the limit", "PUT", "k", bytes.NewReader(tooBig), auth, 413, "limit"},
		{"chunked body over the limit", "PUT", "k", io.MultiReader(bytes.NewReader(tooBig)), auth, 413, "limit"},
		{"no token", "GET", "ok", nil, nil, 403, "token"},
		{"wrong token", "GET", "ok", nil, []string{"X-Consul-Token", "nope"}, 403, "token"},
		{"wrong bearer token", "PUT", "k", strings.NewReader("v"), []string{"Authorization", "Bearer nope"}, 403, "token"},
		{"no token on delete", "DELETE", "ok", nil, nil, 403, "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, text := do(tt.method, tt.path, tt.body, tt.header...)
			if code != tt.want || !strings.Contains(text, tt.text) {
				t.Fatalf("%s %s: %d %q, want %d with %q", tt.method, tt.path, code, text, tt.want, tt.text)
			}
			// The node keeps serving, and nothing was written.
			if code, text := do("GET", "ok?raw", nil, "Authorization", "Bearer "+token); code != 200 || text != "fine" {
				t.Fatalf("GET after the bad request: %d %q", code, text)
			}
			if code, _ := do("GET", "k", nil, auth...); code != 404 {
				t.Fatalf("the bad request wrote k: GET k = %d", code)
			}
		})
	}
	// The limits themselves are fine.
	if code, _ := do("PUT", strings.Repeat("k", 64), bytes.NewReader(tooBig[:1024]), auth...); code != 200 {
		t.Fatalf("a key and a value at the limits: %d", code)
	}
	kv := consulKV(t, n, token)
	if p, _ := mustGet(t, kv, strings.Repeat("k", 64), nil); p == nil || len(p.Value) != 1024 {
		t.Fatalf("the consul client with the token reads %+v", p)
	}
}

// TestConsulKVBlockingGetAfterExpiry: a blocking query on a key that
// expired before the query came (no waiter was there to hear of it) answers
// at once with a 404, not after its wait: the key's absence is the change
// its index asks about. A query on a key never seen (index 1, a 404's)
// still waits.
func TestConsulKVBlockingGetAfterExpiry(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)
	kv := consulKV(t, n, "")
	wantCode(t, "set with ttl", request(t, nc, "roost.set.brief", []byte("v"), "Roost-TTL", "200ms"), 200)
	p, qm := mustGet(t, kv, "brief", nil)
	if p == nil {
		t.Fatal("the key is gone before its TTL")
	}
	eventually(t, 5*time.Second, func() error {
		if p, _ := mustGet(t, kv, "brief", nil); p != nil {
			return fmt.Errorf("still there")
		}
		return nil
	})
	const wait = 20 * time.Second
	start := time.Now()
	p, qm2, err := kv.Get("brief", &api.QueryOptions{WaitIndex: qm.LastIndex, WaitTime: wait})
	if err != nil || p != nil {
		t.Fatalf("blocking query = %+v, %v; want a 404", p, err)
	}
	if took := time.Since(start); took > wait/4 {
		t.Fatalf("the blocking query on a key already expired answered after %s: it waited for a change that had happened", took)
	}
	// Blocking on the absent key (the 404's index) waits for a change.
	start = time.Now()
	if p, _, err := kv.Get("brief", &api.QueryOptions{WaitIndex: qm2.LastIndex, WaitTime: 300 * time.Millisecond}); err != nil || p != nil {
		t.Fatalf("blocking on the absent key = %+v, %v", p, err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("a blocking query on an absent key answered after %s, before its wait and with no change", took)
	}
}
