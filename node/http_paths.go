package node

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Paths are taken as they come or refused, never cleaned (docs/http.md,
// "Paths"). Go's http.ServeMux answers a path holding "." or ".." segments
// or empty ones ("//") with a 307 to the cleaned path, and HTTP clients
// follow a 307 with the same method, body and token: a consul client's
// KV().Put("x/../../../v1/agent/leave", …) became a PUT /v1/agent/leave.
// consul itself refuses such keys with a 400 (agent/kvs_endpoint.go,
// "URL path contains invalid traversal sequence"), and so does Roost, for
// every route, before any routing: a request can only reach the handler
// its path names as sent.

// guardPaths answers 400, naming the fault, a request whose path is not
// valid UTF-8 or holds a ".", ".." or empty segment (a trailing "/" is
// fine: consul's prefix reads end with one). The check is made on the
// decoded path, so "%2e%2e" and "a%2F..%2Fb" are refused like "..". What
// passes is a path the mux never cleans, so it never redirects for that.
func guardPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkPath(r.URL.Path); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkPath says what is wrong with a request's decoded path, or nil.
func checkPath(path string) error {
	if !utf8.ValidString(path) {
		return fmt.Errorf("bad path %q: not valid UTF-8", path)
	}
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("bad path %q: want an absolute path, like /v1/kv/<key>", path)
	}
	segs := strings.Split(path[1:], "/")
	for i, seg := range segs {
		var what string
		switch {
		case seg == "." || seg == "..":
			what = fmt.Sprintf("a %q segment", seg)
		case seg == "" && i < len(segs)-1:
			what = "an empty segment (//)"
		default:
			continue
		}
		if key, ok := strings.CutPrefix(path, kvPath); ok {
			return fmt.Errorf("bad key %q: it has %s; Roost refuses keys with \".\", \"..\" or empty segments over HTTP, as consul does, rather than resolve them into another key or path", key, what)
		}
		return fmt.Errorf("bad path %q: it has %s; Roost refuses \".\", \"..\" and empty path segments rather than resolve them into another path", path, what)
	}
	return nil
}
