package integration

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/node"
)

func TestTextSetGetDelete(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)

	r := request(t, nc, "roost.set.greeting", []byte("hello"), "Roost-Flags", "42")
	wantCode(t, "set", r, 200)
	v1 := r.version(t)

	r = request(t, nc, "roost.get.greeting", nil)
	wantCode(t, "get", r, 200)
	if string(r.body) != "hello" {
		t.Fatalf("get = %q, want hello", r.body)
	}
	if r.version(t) != v1 || r.hdr.Get("Roost-Flags") != "42" {
		t.Fatalf("get headers = %v, want version %d flags 42", r.hdr, v1)
	}

	r = request(t, nc, "roost.del.greeting", nil)
	wantCode(t, "del", r, 200)
	if r.version(t) <= v1 {
		t.Fatalf("delete version %d not above the write's %d", r.version(t), v1)
	}
	wantCode(t, "get after delete", request(t, nc, "roost.get.greeting", nil), 404)
	// Deleting an absent key is idempotent.
	wantCode(t, "delete again", request(t, nc, "roost.del.greeting", nil), 200)
}

func TestVersionsRiseAndCAS(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)

	// CAS 0: only if absent.
	r := request(t, nc, "roost.set.k", []byte("a"), "Roost-CAS", "0")
	wantCode(t, "create with CAS 0", r, 200)
	v1 := r.version(t)
	wantCode(t, "CAS 0 on a present key", request(t, nc, "roost.set.k", []byte("b"), "Roost-CAS", "0"), 409)

	// Every write raises the version.
	r = request(t, nc, "roost.set.k", []byte("b"))
	wantCode(t, "overwrite", r, 200)
	v2 := r.version(t)
	if v2 <= v1 {
		t.Fatalf("version went from %d to %d, want it to rise", v1, v2)
	}

	// CAS with the current version succeeds, with a stale one fails.
	wantCode(t, "stale CAS", request(t, nc, "roost.set.k", []byte("c"), "Roost-CAS", strconv.FormatUint(v1, 10)), 409)
	r = request(t, nc, "roost.set.k", []byte("c"), "Roost-CAS", strconv.FormatUint(v2, 10))
	wantCode(t, "current CAS", r, 200)
	v3 := r.version(t)
	if got := request(t, nc, "roost.get.k", nil); string(got.body) != "c" || got.version(t) != v3 {
		t.Fatalf("after CAS: %q v%d, want c v%d", got.body, got.version(t), v3)
	}

	// A non-zero CAS on an absent key is a conflict.
	wantCode(t, "CAS on absent key", request(t, nc, "roost.set.absent", []byte("x"), "Roost-CAS", "7"), 409)
	// Delete with CAS.
	wantCode(t, "delete with stale CAS", request(t, nc, "roost.del.k", nil, "Roost-CAS", strconv.FormatUint(v2, 10)), 409)
	wantCode(t, "delete with current CAS", request(t, nc, "roost.del.k", nil, "Roost-CAS", strconv.FormatUint(v3, 10)), 200)
	wantCode(t, "get after CAS delete", request(t, nc, "roost.get.k", nil), 404)
}

func TestTTLExpires(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)

	for _, ttl := range []string{"1s", "1"} { // a Go duration and whole seconds
		key := "roost.set.ttl" + ttl
		start := time.Now()
		wantCode(t, "set with TTL "+ttl, request(t, nc, key, []byte("v"), "Roost-TTL", ttl), 200)
		get := "roost.get.ttl" + ttl
		r := request(t, nc, get, nil)
		if time.Since(start) < 900*time.Millisecond {
			wantCode(t, "get before expiry", r, 200)
			if r.hdr.Get("Roost-Expires") == "" {
				t.Fatalf("a key with a TTL has no Roost-Expires header")
			}
		}
		eventually(t, 5*time.Second, func() error {
			if r := request(t, nc, get, nil); r.code != 404 {
				return fmt.Errorf("still answers %d after %s", r.code, time.Since(start))
			}
			return nil
		})
		if gone := time.Since(start); gone < 900*time.Millisecond {
			t.Fatalf("a 1 s TTL expired after only %s", gone)
		}
	}
	// Expired keys are swept, not only hidden.
	eventually(t, 5*time.Second, func() error {
		if s := n.StoreStats(); s.Keys != 0 || s.Expirations < 2 {
			return fmt.Errorf("keys %d expirations %d, want 0 and >= 2", s.Keys, s.Expirations)
		}
		return nil
	})
}

func TestLargeBinaryValueRoundTrips(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)
	value := make([]byte, 256<<10)
	if _, err := rand.Read(value); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "set 256 KiB", request(t, nc, "roost.set.blob", value), 200)
	r := request(t, nc, "roost.get.blob", nil)
	wantCode(t, "get 256 KiB", r, 200)
	if !bytes.Equal(r.body, value) {
		t.Fatalf("256 KiB value came back different (%d bytes)", len(r.body))
	}
}

func TestDottedKeysAreDistinct(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)
	for _, k := range []string{"a.b.c", "a.b", "x.b.c"} {
		wantCode(t, "set "+k, request(t, nc, "roost.set."+k, []byte("value of "+k)), 200)
	}
	for _, k := range []string{"a.b.c", "a.b", "x.b.c"} {
		if r := request(t, nc, "roost.get."+k, nil); string(r.body) != "value of "+k {
			t.Fatalf("get %s = %q (code %d)", k, r.body, r.code)
		}
	}
	wantCode(t, "del a.b", request(t, nc, "roost.del.a.b", nil), 200)
	wantCode(t, "a.b.c survives a.b's delete", request(t, nc, "roost.get.a.b.c", nil), 200)
}

func TestBadInputKeepsServing(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *node.Config) { c.MaxValue = 4096 })
	nc := connect(t, n)
	wantCode(t, "seed", request(t, nc, "roost.set.keep", []byte("kept")), 200)

	cases := []struct {
		name    string
		subject string
		body    []byte
		headers []string
		code    int
	}{
		{"key over 1024 bytes", "roost.set." + strings.Repeat("k", 1025), []byte("v"), nil, 400},
		{"get of a key over 1024 bytes", "roost.get." + strings.Repeat("k", 1025), nil, nil, 400},
		{"TTL banana", "roost.set.k", []byte("v"), []string{"Roost-TTL", "banana"}, 400},
		{"negative TTL", "roost.set.k", []byte("v"), []string{"Roost-TTL", "-5s"}, 400},
		{"CAS xyz", "roost.set.k", []byte("v"), []string{"Roost-CAS", "xyz"}, 400},
		{"delete CAS xyz", "roost.del.k", nil, []string{"Roost-CAS", "xyz"}, 400},
		{"flags -1", "roost.set.k", []byte("v"), []string{"Roost-Flags", "-1"}, 400},
		{"ack maybe", "roost.set.k", []byte("v"), []string{"Roost-Ack", "maybe"}, 400},
		{"value over the limit", "roost.set.k", make([]byte, 4097), nil, 413},
		{"malformed msgpack", "roost.bin.batch", []byte{0xc1, 0xff, 0x00}, nil, 400},
		{"batch that is not a map", "roost.bin.batch", []byte("hello"), nil, 400},
		{"malformed scan", "roost.bin.scan", []byte{0xc1}, nil, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.name, request(t, nc, tc.subject, tc.body, tc.headers...), tc.code)
			if r := request(t, nc, "roost.get.keep", nil); r.code != 200 || string(r.body) != "kept" {
				t.Fatalf("after %s the node answers %d %q", tc.name, r.code, r.body)
			}
		})
	}
	// Nothing bad input touched was written.
	wantCode(t, "k was never written", request(t, nc, "roost.get.k", nil), 404)

	t.Run("unknown operation", func(t *testing.T) {
		_, err := nc.Request("roost.frob.k", nil, time.Second)
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("roost.frob.k: err %v, want no responders", err)
		}
		ops := wire.BatchRequest{Ops: []wire.Request{{Op: 9, Key: "k"}, {Op: wire.OpGet, Key: "keep"}}}
		data, _ := wire.Marshal(ops)
		resp, err := nc.Request("roost.bin.batch", data, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var br wire.BatchResponse
		if err := wire.Unmarshal(resp.Data, &br); err != nil {
			t.Fatalf("batch reply: %v (headers %v)", err, resp.Header)
		}
		if len(br.Results) != 2 || br.Results[0].Code != 400 || br.Results[0].Error == "" || br.Results[1].Code != 200 {
			t.Fatalf("batch with an unknown op: %+v", br.Results)
		}
	})
}

func TestWrongTokenIsRefused(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *node.Config) { c.Token = "s3cret" })
	if _, err := nats.Connect(n.ClientURL(), nats.Token("wrong")); err == nil {
		t.Fatal("a wrong token connected")
	} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Fatalf("wrong token: %v, want an authorization error", err)
	}
	if _, err := nats.Connect(n.ClientURL()); err == nil {
		t.Fatal("no token connected")
	}
	nc := connect(t, n, nats.Token("s3cret"))
	wantCode(t, "set with the right token", request(t, nc, "roost.set.k", []byte("v")), 200)
	// HTTP: health is open, status needs the token.
	if c := httpGet(t, n, "/v1/health"); c != 200 {
		t.Fatalf("/v1/health without token = %d, want 200", c)
	}
	if c := httpGet(t, n, "/v1/status"); c != 403 {
		t.Fatalf("/v1/status without token = %d, want 403", c)
	}
	if c := httpGet(t, n, "/v1/status", "X-Consul-Token", "wrong"); c != 403 {
		t.Fatalf("/v1/status with a wrong token = %d, want 403", c)
	}
	if c := httpGet(t, n, "/v1/status", "Authorization", "Bearer s3cret"); c != 200 {
		t.Fatalf("/v1/status with the token = %d, want 200", c)
	}
}

func TestMicroServiceIsDiscoverable(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)
	resp, err := nc.Request("$SRV.PING.roost", nil, 2*time.Second)
	if err != nil {
		t.Fatalf("$SRV.PING.roost: %v", err)
	}
	if !bytes.Contains(resp.Data, []byte(`"name":"roost"`)) {
		t.Fatalf("ping reply %s does not name roost", resp.Data)
	}
	resp, err = nc.Request("$SRV.INFO.roost", nil, 2*time.Second)
	if err != nil {
		t.Fatalf("$SRV.INFO.roost: %v", err)
	}
	var info struct {
		Endpoints []struct{ Subject string } `json:"endpoints"`
	}
	if err := json.Unmarshal(resp.Data, &info); err != nil {
		t.Fatalf("service info: %v", err)
	}
	have := map[string]bool{}
	for _, ep := range info.Endpoints {
		have[ep.Subject] = true
	}
	for _, subject := range []string{"roost.get.>", "roost.set.>", "roost.del.>", "roost.bin.batch", "roost.bin.scan", "roost.admin.status"} {
		if !have[subject] {
			t.Fatalf("service info lacks %s: %s", subject, resp.Data)
		}
	}
}
