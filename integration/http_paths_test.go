package integration

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/node"
)

// No request reaches another handler than the one its path names as sent:
// paths with ".", ".." or empty segments are refused with a 400, never
// cleaned and redirected (docs/http.md, "Paths"). Before, a consul client's
// KV().Put("x/../../../v1/agent/leave") followed the mux's 307 and made the
// node leave, and KV().Put("a/../victim") overwrote "victim".

// errRedirected is what a client that refuses redirects returns.
var errRedirected = errors.New("redirected")

// noRedirects is an HTTP client that fails any redirect instead of
// following it, so a test sees a redirect as an error.
func noRedirects() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return fmt.Errorf("%w to %s", errRedirected, req.URL)
		},
	}
}

// traversalKeys are keys a consul client sends as they are, which a path
// cleaner would turn into another key or another endpoint.
var traversalKeys = []string{
	"x/../../../v1/agent/leave",
	"../../v1/agent/leave",
	"a/../victim",
	"a/./victim",
	"./victim",
	"victim/.",
	"victim/..",
	"x//victim",
	"..",
	".",
}

func TestConsulKVTraversalKeysAreRefused(t *testing.T) {
	t.Parallel()
	skipInRaceStep(t, "input validation over many requests; the handlers are raced by TestConsulKV*")
	for _, token := range []string{"", agentToken} {
		name := "no token"
		if token != "" {
			name = "with token"
		}
		t.Run(name, func(t *testing.T) {
			nodes := startCluster(t, 2, func(_ int, c *node.Config) { c.Token = token })
			c, err := api.NewClient(&api.Config{Address: nodes[0].HTTPAddr(), Token: token, HttpClient: noRedirects()})
			if err != nil {
				t.Fatal(err)
			}
			kv := c.KV()
			mustPut(t, kv, &api.KVPair{Key: "victim", Value: []byte("intact")})
			mustPut(t, kv, &api.KVPair{Key: "x/victim", Value: []byte("intact")})
			victim, _ := mustGet(t, kv, "victim", nil)

			for _, key := range traversalKeys {
				_, err := kv.Put(&api.KVPair{Key: key, Value: []byte("evil")}, nil)
				wantBadKey(t, "Put "+key, err)
				_, _, err = kv.CAS(&api.KVPair{Key: key, Value: []byte("evil"), ModifyIndex: victim.ModifyIndex}, nil)
				wantBadKey(t, "CAS "+key, err)
				_, _, err = kv.Get(key, nil)
				wantBadKey(t, "Get "+key, err)
				_, _, err = kv.List(key, nil)
				wantBadKey(t, "List "+key, err)
				_, err = kv.Delete(key, nil)
				wantBadKey(t, "Delete "+key, err)
				_, err = kv.DeleteTree(key, nil)
				wantBadKey(t, "DeleteTree "+key, err)
			}

			// Percent signs are part of a key: the client escapes them, so
			// "a/%2e%2e/victim" is stored as written, apart from "victim".
			mustPut(t, kv, &api.KVPair{Key: "a/%2e%2e/victim", Value: []byte("literal")})
			if p, _ := mustGet(t, kv, "a/%2e%2e/victim", nil); p == nil || string(p.Value) != "literal" {
				t.Fatalf("the literal key a/%%2e%%2e/victim reads back %+v", p)
			}

			// Nothing else changed, both nodes are still members and serve.
			for _, key := range []string{"victim", "x/victim"} {
				p, _ := mustGet(t, kv, key, nil)
				if p == nil || string(p.Value) != "intact" {
					t.Fatalf("%s after the traversal attempts = %+v, want intact", key, p)
				}
			}
			keys, _, err := kv.Keys("", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := "[a/%2e%2e/victim victim x/victim]"; fmt.Sprint(keys) != want {
				t.Fatalf("keys = %v, want %s", keys, want)
			}
			for _, n := range nodes {
				for _, peer := range []string{"n1", "n2"} {
					if s := memberStatus(n, peer); s != membership.Alive {
						t.Fatalf("%s sees %s %s after the attempts, want alive", n.Name(), peer, s)
					}
				}
			}
			members, err := c.Agent().Members(false)
			if err != nil || len(members) != 2 || members[0].Status != serfAlive {
				t.Fatalf("members = %+v, %v", members, err)
			}
		})
	}
}

// wantBadKey checks that a consul client call was refused with a 400 that
// names the bad key, and not redirected.
func wantBadKey(t *testing.T, what string, err error) {
	t.Helper()
	switch {
	case err == nil:
		t.Fatalf("%s succeeded, want a 400", what)
	case errors.Is(err, errRedirected) || strings.Contains(err.Error(), errRedirected.Error()):
		t.Fatalf("%s was redirected: %v", what, err)
	case !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "bad key"):
		t.Fatalf("%s = %v, want a 400 naming the bad key", what, err)
	}
}

// rawRoutes are every route, with a user string where the route has one,
// as method and path.
var rawRoutes = [][2]string{
	{"GET", "/v1/health"},
	{"GET", "/v1/status"},
	{"GET", "/v1/status/leader"},
	{"GET", "/v1/status/peers"},
	{"GET", "/v1/kv/victim"},
	{"PUT", "/v1/kv/victim"},
	{"DELETE", "/v1/kv/victim"},
	{"GET", "/v1/agent/self"},
	{"GET", "/v1/agent/members"},
	{"PUT", "/v1/agent/join/127.0.0.1:1"},
	{"PUT", "/v1/agent/leave"},
	{"PUT", "/v1/agent/force-leave/n2"},
	{"GET", "/v1/health/state/any"},
	{"GET", "/v1/roost/members"},
	{"PUT", "/v1/roost/members/n1/tags"},
	{"GET", "/v1/roost/stats"},
	{"GET", "/metrics"},
	{"GET", "/ui/index.html"},
	{"GET", "/ui/"},
}

// mangle returns request targets made from path: dot and empty segments,
// their percent-encoded forms, invalid UTF-8 (escaped and raw), NUL and a
// bad escape, each where a user string goes and at the start. None names
// the route's own resource; for a GET, the path itself with junk queries
// is added.
func mangle(method, path string) []string {
	i := strings.LastIndex(path, "/")
	dir, last := path[:i], path[i+1:]
	targets := []string{
		dir + "/../" + last,
		dir + "/./" + last,
		dir + "//" + last,
		dir + "/x/../" + last,
		dir + "/x/../../../v1/agent/leave",
		path + "/..",
		path + "/.",
		path + "/../../v1/agent/leave",
		dir + "/%2e%2e/" + last,
		dir + "/%2E%2e%2F" + last,
		dir + "/x%2F..%2F" + last,
		dir + "/%2e/" + last,
		dir + "/%2F" + last,
		dir + "/" + last + "%ff",
		dir + "/" + last + "\xff\xfe",
		dir + "/%c0%ae%c0%ae/" + last,
		dir + "/" + last + "%00",
		dir + "/" + last + "%zz",
		"//" + path[1:],
		"/./" + path[1:],
		"/v1/../" + path[1:],
	}
	if method == "GET" {
		targets = append(targets,
			path+"?index=%ff&wait=%zz&token=%00&recurse&keys&separator=%ff&status=%ff&tag=%00",
			path+"?index=99999999999999999999&wait=-1s&flags=-1&cas=x&ttl=%ff",
			path+"?wait=1ms&index=1;x",
		)
	}
	return targets
}

// rawHeaders are malformed or hostile header sets sent with each target.
var rawHeaders = [][]string{
	nil,
	{"X-Consul-Token: \xff\xfe", "Authorization: Bearer"},
	{"Authorization: Basic %%%", "Range: bytes=junk", "If-None-Match: \x01"},
	{"Content-Type: application/json; charset=\xff", "Accept-Encoding: gzip;q=x"},
}

// rawDo writes one request to addr over TCP, byte for byte as given, and
// returns the status code of the answer.
func rawDo(t *testing.T, addr, method, target string, headers []string, body string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Length: %d\r\n", method, target, addr, len(body))
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n" + body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatalf("write %q: %v", target, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %q: no answer: %v", method, target, err)
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(text)
}

func TestHTTPMalformedRequestsNeverRedirectNorFail(t *testing.T) {
	t.Parallel()
	skipInRaceStep(t, "input validation over many requests; the handlers are raced by TestConsulKV*")
	nodes := startCluster(t, 2, withToken)
	n := nodes[0]
	kv := consulKV(t, n, agentToken)
	mustPut(t, kv, &api.KVPair{Key: "victim", Value: []byte("intact")})
	auth := "X-Consul-Token: " + agentToken

	sent := 0
	for _, route := range rawRoutes {
		method, path := route[0], route[1]
		for _, target := range mangle(method, path) {
			for _, hdrs := range rawHeaders {
				for _, withAuth := range []bool{true, false} {
					h := hdrs
					if withAuth {
						h = append([]string{auth}, hdrs...)
					}
					code, text := rawDo(t, n.HTTPAddr(), method, target, h, `{"zone":"evil"}`)
					sent++
					if code >= 300 && code < 400 || code >= 500 {
						t.Fatalf("%s %q with %q: %d %q, want no 3xx and no 5xx", method, target, h, code, text)
					}
				}
			}
		}
	}
	// Paths the mux used to redirect for a missing slash, or the file
	// server for index.html.
	for _, target := range []string{"/ui", "/ui/index.html", "/v1/kv", "/v1/kv?recurse", "/v1/agent/join", "/v1/health/state", "/v1/roost/members/", "/", "/v1", "/v1/"} {
		code, text := rawDo(t, n.HTTPAddr(), "GET", target, []string{auth}, "")
		sent++
		if code >= 300 && code < 400 || code >= 500 {
			t.Fatalf("GET %q: %d %q, want no 3xx and no 5xx", target, code, text)
		}
	}
	t.Logf("%d raw requests", sent)

	// The node still serves, victim is intact, nobody left or was re-tagged.
	if code, text := rawDo(t, n.HTTPAddr(), "GET", "/v1/kv/victim?raw", []string{auth}, ""); code != 200 || text != "intact" {
		t.Fatalf("victim after the raw requests: %d %q", code, text)
	}
	for _, peer := range []string{"n1", "n2"} {
		if s := memberStatus(n, peer); s != membership.Alive {
			t.Fatalf("n1 sees %s %s after the raw requests", peer, s)
		}
	}
	for _, m := range n.Members().Members {
		if m.Tags["zone"] != "" {
			t.Fatalf("%s was re-tagged: %v", m.Name, m.Tags)
		}
	}
}
