package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/node"
)

// BenchmarkHTTP compares, in one run, the consul KV HTTP API with keep-alive
// connections against the NATS text API's get on the same node: 32
// requesters, 100-byte values over 100k keys.
func BenchmarkHTTP(b *testing.B) {
	n := startBenchNodeWith(b, func(c *node.Config) { c.HTTP = "127.0.0.1:0" })
	nc := dial(b, n.ClientURL())
	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: benchConcurrency, MaxIdleConnsPerHost: benchConcurrency}}
	b.Cleanup(hc.CloseIdleConnections)
	base := "http://" + n.HTTPAddr() + "/v1/kv/"
	value := make([]byte, benchValueSize)

	do := func(req *http.Request, want int) error {
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body) // drain: the connection goes back to the pool
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("%s %s: %d", req.Method, req.URL.Path, resp.StatusCode)
		}
		return nil
	}

	b.Run("nats-get", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			return request(ctx, nc, &nats.Msg{Subject: "roost.get." + benchKey(rng.IntN(benchKeys))})
		})
	})
	b.Run("http-get", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			req, _ := http.NewRequest(http.MethodGet, base+benchKey(rng.IntN(benchKeys))+"?raw", nil)
			return do(req, http.StatusOK)
		})
	})
	b.Run("http-put", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			req, _ := http.NewRequest(http.MethodPut, base+benchKey(rng.IntN(benchKeys)), bytes.NewReader(value))
			return do(req, http.StatusOK)
		})
	})
}
