package integration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/roostkv/roost/client"
)

// wildcardKeys are keys with a NATS wildcard as a whole dot-separated token,
// with the token the refusal must name.
var wildcardKeys = []struct{ key, names string }{
	{"a.*", `token 2 is "*"`},
	{"a.>", `token 2 is ">"`},
	{"*", `token 1 is "*"`},
	{">", `token 1 is ">"`},
	{"users.*.name", `token 2 is "*"`},
	{"x.y.>", `token 3 is ">"`},
}

// literalStarKeys hold "*" or ">" inside a token: NATS takes them literally,
// and so does Roost.
var literalStarKeys = []string{"a*", "a.b*", "a.*b", "x>y", "a.>>", "**.c"}

// TestWildcardKeysRefused: a key with "*" or ">" as a whole token is refused
// with a 400 naming the token by the text API (for set, get and del, so that
// `roost.del.users.>` cannot pass for a successful delete of everything under
// users.), the binary API through the Go client, and HTTP; nothing is
// written, the node keeps serving, and "*" or ">" inside a token is an
// ordinary character on every API.
func TestWildcardKeysRefused(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	nc := connect(t, n)
	c := dialClient(t, n)
	ctx := context.Background()
	wantCode(t, "seed", request(t, nc, "roost.set.keep", []byte("kept")), 200)

	for _, wk := range wildcardKeys {
		t.Run("text "+wk.key, func(t *testing.T) {
			for _, op := range []string{"set", "get", "del"} {
				r := request(t, nc, "roost."+op+"."+wk.key, []byte("v"))
				wantCode(t, op+" "+wk.key, r, 400)
				if !strings.Contains(r.err, wk.names) || !strings.Contains(r.err, "wildcard") {
					t.Errorf("%s %s: error %q does not name the token (%s)", op, wk.key, r.err, wk.names)
				}
			}
		})
		t.Run("client "+wk.key, func(t *testing.T) {
			check := func(what string, err error) {
				t.Helper()
				var ce *client.Error
				if !errors.Is(err, client.ErrBadRequest) || !errors.As(err, &ce) || !strings.Contains(ce.Message, wk.names) {
					t.Errorf("%s %q: %v, want a 400 naming %s", what, wk.key, err, wk.names)
				}
			}
			_, err := c.Set(ctx, wk.key, []byte("v"))
			check("Set", err)
			_, err = c.Get(ctx, wk.key)
			check("Get", err)
			_, err = c.Delete(ctx, wk.key)
			check("Delete", err)
			// In a batch, the wildcard key fails alone.
			_, err = c.MSet(ctx, client.SetItem{Key: wk.key, Value: []byte("v")}, client.SetItem{Key: "batch.ok", Value: []byte("ok")})
			check("MSet", err)
		})
		t.Run("http "+wk.key, func(t *testing.T) {
			for _, method := range []string{http.MethodPut, http.MethodGet, http.MethodDelete} {
				code, body := httpDo(t, method, fmt.Sprintf("http://%s/v1/kv/%s", n.HTTPAddr(), url.PathEscape(wk.key)), "v")
				if code != http.StatusBadRequest || !strings.Contains(body, wk.names) {
					t.Errorf("%s /v1/kv/%s: %d %q, want 400 naming %s", method, wk.key, code, body, wk.names)
				}
			}
		})
	}

	keys, err := c.Keys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k != "keep" && k != "batch.ok" {
			t.Errorf("refused requests wrote key %q (keys: %q)", k, keys)
		}
	}
	if r := request(t, nc, "roost.get.keep", nil); r.code != 200 || string(r.body) != "kept" {
		t.Fatalf("after the refusals the node answers %d %q", r.code, r.body)
	}

	// "*" and ">" inside a token are literal characters on every API.
	for i, k := range literalStarKeys {
		val := fmt.Sprintf("v%d", i)
		wantCode(t, "text set "+k, request(t, nc, "roost.set."+k, []byte(val)), 200)
		if it, err := c.Get(ctx, k); err != nil || string(it.Value) != val {
			t.Errorf("client Get %q = %q, %v; want %q", k, it.Value, err, val)
		}
		code, body := httpDo(t, http.MethodGet, fmt.Sprintf("http://%s/v1/kv/%s?raw", n.HTTPAddr(), url.PathEscape(k)), "")
		if code != 200 || body != val {
			t.Errorf("GET /v1/kv/%s?raw = %d %q, want %q", k, code, body, val)
		}
		if _, err := c.Set(ctx, k, []byte(val+"'")); err != nil {
			t.Errorf("client Set %q: %v", k, err)
		}
		if r := request(t, nc, "roost.get."+k, nil); r.code != 200 || string(r.body) != val+"'" {
			t.Errorf("text get %s = %d %q, want %q", k, r.code, r.body, val+"'")
		}
	}
	// Consul-style keys with "/" are unaffected: "a/*" is one token.
	code, body := httpDo(t, http.MethodPut, fmt.Sprintf("http://%s/v1/kv/conf/*", n.HTTPAddr()), "star")
	if code != 200 || strings.TrimSpace(body) != "true" {
		t.Errorf("PUT /v1/kv/conf/* = %d %q, want 200 true", code, body)
	}
}

// TestWildcardKeysRefusedNATSCLI: what a user of the stock nats CLI sees
// for `nats req 'roost.set.a.*' x`, the case the issue reported.
func TestWildcardKeysRefusedNATSCLI(t *testing.T) {
	t.Parallel()
	cli := natsCLI(t)
	n := startNode(t, nil)
	for _, subject := range []string{"roost.set.a.*", "roost.set.a.>", "roost.get.a.*", "roost.del.users.>"} {
		out, _ := runNATS(t, cli, n.ClientURL(), "req", subject, "x")
		if !strings.Contains(out, "400") || !strings.Contains(out, "wildcard") {
			t.Errorf("nats req %s x did not show the 400:\n%s", subject, out)
		}
	}
	keys, err := dialClient(t, n).Keys(context.Background(), "")
	if err != nil || len(keys) != 0 {
		t.Errorf("after the refused requests the keys are %q (%v), want none", keys, err)
	}
}

// httpDo sends one request with body and returns the status and body.
func httpDo(t *testing.T, method, u, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
