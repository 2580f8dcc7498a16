package node

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzHTTP sends arbitrary requests (method, target, one header, body) to
// the HTTP handler of a live single node, parsed as the server parses
// them, and checks that none is answered with a redirect or a 5xx (but the
// documented join failures), that the node still serves, and that keys
// change only by a write that was answered 200. `go test` runs the seeds;
// `go test -fuzz FuzzHTTP ./node/` explores.
func FuzzHTTP(f *testing.F) {
	seeds := []struct{ method, target, header, body string }{
		{"GET", "/v1/kv/known?raw", "", ""},
		{"PUT", "/v1/kv/x/../../../v1/agent/leave", "", "evil"},
		{"PUT", "/v1/kv/a/../known", "", "evil"},
		{"PUT", "/v1/kv/a/%2e%2e/known", "", "evil"},
		{"PUT", "/v1/kv/a/%2E%2E%2Fknown", "", "evil"},
		{"PUT", "/v1/kv/x%2F..%2Fknown", "", "evil"},
		{"DELETE", "/v1/kv/./known", "", ""},
		{"DELETE", "/v1/kv//known", "", ""},
		{"GET", "/v1/kv/known/..", "", ""},
		{"GET", "/v1/kv?recurse", "", ""},
		{"GET", "/v1/kv/?keys&separator=%ff", "", ""},
		{"GET", "/v1/kv/known?index=%ff&wait=%zz", "", ""},
		{"GET", "/v1/kv/known?index=1&wait=1ms", "", ""},
		{"GET", "/ui/%ff", "", ""},
		{"GET", "/ui/\xff\xfe", "", ""},
		{"GET", "/ui/index.html", "Range: bytes=junk", ""},
		{"GET", "/ui", "", ""},
		{"GET", "/ui/../v1/status", "", ""},
		{"GET", "/v1/../v1/status", "", ""},
		{"PUT", "/v1/agent/join/nats://127.0.0.1:1", "", ""},
		{"PUT", "/v1/agent/join/%2e%2e", "", ""},
		{"PUT", "/v1/agent/force-leave/..", "", ""},
		{"PUT", "/v1/agent/force-leave/%00", "", ""},
		{"PUT", "/v1/roost/members/t/../t/tags", "", `{"zone":"evil"}`},
		{"PUT", "/v1/roost/members/%2e/tags", "", `{"zone":"evil"}`},
		{"GET", "/v1/health/state/%ff", "", ""},
		{"GET", "/v1/roost/members?status=%ff&tag=:", "", ""},
		{"GET", "/v1/agent/self", "X-Consul-Token: \xff", ""},
		{"GET", "/v1/status/leader?token=%00", "Authorization: Bearer", ""},
		{"GET", "/metrics", "Accept: \x01", ""},
		{"OPTIONS", "*", "", ""},
		{"CONNECT", "127.0.0.1:1", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.header, s.body)
	}
	n := startTestNode(f, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Ready(ctx); err != nil {
		f.Fatal(err)
	}
	h := n.httpHandler()
	serve := func(method, target, header, body string) (*httptest.ResponseRecorder, bool) {
		raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: roost\r\nContent-Length: %d\r\n", method, target, len(body))
		if header != "" {
			raw += header + "\r\n"
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + "\r\n" + body)))
		if err != nil {
			return nil, false // the server answers 400 itself
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond) // blocking reads end here
		defer cancel()
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req.WithContext(ctx))
		return w, true
	}
	const known = "known"
	put := func(f testing.TB) {
		if w, _ := serve("PUT", "/v1/kv/"+known, "", "intact"); w.Code != http.StatusOK {
			f.Fatalf("PUT known: %d %s", w.Code, w.Body)
		}
	}
	put(f)

	f.Fuzz(func(t *testing.T, method, target, header, body string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(fmt.Sprintf("%s %s HTTP/1.1\r\nHost: roost\r\n\r\n", method, target))))
		if err != nil {
			return
		}
		if p := req.URL.Path; req.Method == "PUT" && checkPath(p) == nil && (p == "/v1/agent/leave" || strings.HasPrefix(p, "/v1/agent/join/")) {
			t.Skip("a well-formed leave or join") // it would stop the node, or route it somewhere
		}
		w, ok := serve(method, target, header, body)
		if !ok {
			return
		}
		if w.Code >= 300 && w.Code < 400 || w.Code >= 500 {
			t.Fatalf("%s %q %q: %d %q, want no 3xx and no 5xx", method, target, header, w.Code, w.Body)
		}
		wrote := w.Code == http.StatusOK && (req.Method == "PUT" || req.Method == "DELETE") && strings.HasPrefix(req.URL.Path, "/v1/kv")
		got, _ := serve("GET", "/v1/kv/"+known+"?raw", "", "")
		switch {
		case got.Code == http.StatusOK && got.Body.String() == "intact":
		case wrote:
			put(t) // a write the API accepted: put it back for the next input
		default:
			t.Fatalf("%s %q %q answered %d and changed %s: now %d %q", method, target, header, w.Code, known, got.Code, got.Body)
		}
		if w, _ := serve("GET", "/v1/health", "", ""); w.Code != http.StatusOK {
			t.Fatalf("%s %q %q: the node no longer serves: health %d", method, target, header, w.Code)
		}
	})
}
