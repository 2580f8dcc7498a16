package integration

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/roostkv/roost/node"
)

// The token as consul reads it: ?token=, X-Consul-Token, Authorization:
// Bearer, in that order.
func TestTokenInTheQuery(t *testing.T) {
	t.Parallel()
	n := startNode(t, func(c *node.Config) { c.Token = agentToken })
	mustPut(t, consulKV(t, n, agentToken), &api.KVPair{Key: "k", Value: []byte("v")})
	q := "?token=" + url.QueryEscape(agentToken)
	for _, tt := range []struct {
		method, path string
		header       []string
		want         int
	}{
		{"GET", "/v1/kv/k" + q, nil, 200},
		{"GET", "/v1/kv/k?raw&token=" + agentToken, nil, 200},
		{"PUT", "/v1/kv/q" + q, nil, 200},
		{"DELETE", "/v1/kv/q" + q, nil, 200},
		{"GET", "/v1/agent/members" + q, nil, 200},
		{"GET", "/v1/agent/self" + q, nil, 200},
		{"GET", "/v1/status/leader" + q, nil, 200},
		{"GET", "/v1/status" + q, nil, 200},
		{"GET", "/v1/roost/stats" + q, nil, 200},
		{"GET", "/v1/kv/k?token=wrong", nil, 403},
		{"GET", "/v1/kv/k?token=", nil, 403},
		// The query wins, as in consul: a wrong one is not saved by a right header.
		{"GET", "/v1/kv/k?token=wrong", []string{"X-Consul-Token", agentToken}, 403},
		{"GET", "/v1/kv/k?token=", []string{"X-Consul-Token", agentToken}, 200}, // empty: the header counts
		{"GET", "/v1/kv/k" + q, []string{"X-Consul-Token", "wrong"}, 200},
	} {
		if code, body := agentDo(t, n, tt.method, tt.path, "v", tt.header...); code != tt.want {
			t.Fatalf("%s %s %v = %d %q, want %d", tt.method, tt.path, tt.header, code, body, tt.want)
		}
	}
	// A consul client with the token in its config sends the header; one
	// whose requests carry ?token= (older clients, URLs copied from consul's
	// docs) works too.
	c, err := api.NewClient(&api.Config{Address: n.HTTPAddr()})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := c.KV().Get("k", &api.QueryOptions{Token: agentToken})
	if err != nil || p == nil || string(p.Value) != "v" {
		t.Fatalf("Get with QueryOptions.Token = %+v, %v", p, err)
	}
}

// ?index=N&wait=0s waits as long as no wait: consul's 5 minutes, not 0.
func TestBlockingWaitZeroIsTheDefault(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	kv := consulKV(t, n, "")
	mustPut(t, kv, &api.KVPair{Key: "k", Value: []byte("v")})
	_, meta := mustGet(t, kv, "k", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := kv.Get("k", (&api.QueryOptions{WaitIndex: meta.LastIndex}).WithContext(ctx)) // WaitTime 0: no ?wait
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a blocking get without wait answered after %s: %v; want it still waiting", time.Since(start), err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel2()
	req, _ := http.NewRequestWithContext(ctx2, "GET", "http://"+n.HTTPAddr()+"/v1/kv/k?wait=0s&index="+strconv.FormatUint(meta.LastIndex, 10), nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("?wait=0s answered %d at once; want it to wait (consul's 5-minute default)", resp.StatusCode)
	}
}
