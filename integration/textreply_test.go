package integration

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTextRepliesCarryOnlyTheirHeaders: the text API answers from a reused
// reply message (node/api_text_fast.go), so every reply must carry exactly
// its own headers, whatever the reply before it had: a get of a key with a
// TTL then one without, a set after a get. The micro service still counts
// each request and each error ($SRV.STATS), and a set published with no
// reply subject is applied and answers nothing.
func TestTextRepliesCarryOnlyTheirHeaders(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)
	wantCode(t, "set ttl", request(t, nc, "roost.set.ttl", []byte("a"), "Roost-TTL", "1h", "Roost-Flags", "7"), 200)
	wantCode(t, "set plain", request(t, nc, "roost.set.plain", []byte("b")), 200)
	headers := func(r reply) string {
		var names []string
		for k := range r.hdr {
			names = append(names, k)
		}
		slices.Sort(names)
		return strings.Join(names, ",")
	}
	for i := range 20 {
		r := request(t, nc, "roost.get.ttl", nil)
		if got := headers(r); got != "Roost-Expires,Roost-Flags,Roost-Version" || r.hdr.Get("Roost-Flags") != "7" || string(r.body) != "a" {
			t.Fatalf("round %d: get of a key with a TTL: %q, headers %v", i, r.body, r.hdr)
		}
		r = request(t, nc, "roost.get.plain", nil)
		if got := headers(r); got != "Roost-Flags,Roost-Version" || r.hdr.Get("Roost-Flags") != "0" || string(r.body) != "b" {
			t.Fatalf("round %d: get of a key without a TTL: %q, headers %v", i, r.body, r.hdr)
		}
		r = request(t, nc, "roost.set.plain", []byte("b"))
		if got := headers(r); got != "Roost-Version" || len(r.body) != 0 {
			t.Fatalf("round %d: set: %q, headers %v", i, r.body, r.hdr)
		}
		wantCode(t, "get absent", request(t, nc, "roost.get.absent", nil), 404)
	}

	// A set with no reply subject is applied; nothing answers it.
	if err := nc.Publish("roost.set.fired", []byte("c")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error {
		if r := request(t, nc, "roost.get.fired", nil); r.code != 200 || string(r.body) != "c" {
			return fmt.Errorf("get fired: %d %q, want the published set's value", r.code, r.body)
		}
		return nil
	})

	// micro counts what the handlers answered: 61+ gets of which 20 or
	// more were 404s (errors; "fired" may be one too, before its set
	// landed), 23 sets (the published one too) without an error.
	msg, err := nc.Request("$SRV.STATS.roost", nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Endpoints []struct {
			Name        string `json:"name"`
			NumRequests int    `json:"num_requests"`
			NumErrors   int    `json:"num_errors"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(msg.Data, &st); err != nil {
		t.Fatal(err)
	}
	for _, ep := range st.Endpoints {
		switch {
		case ep.Name == "get" && (ep.NumRequests < 61 || ep.NumErrors < 20 || ep.NumErrors > ep.NumRequests-41):
			t.Errorf("$SRV.STATS: get served %d requests with %d errors, want at least 61 with 20 and 41 answered", ep.NumRequests, ep.NumErrors)
		case ep.Name == "set" && (ep.NumRequests < 23 || ep.NumErrors != 0):
			t.Errorf("$SRV.STATS: set served %d requests with %d errors, want at least 23 with none", ep.NumRequests, ep.NumErrors)
		}
	}
}
