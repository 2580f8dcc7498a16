package bench

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/roostkv/roost/node"
)

// BenchmarkCatalogHTTP compares, in one run on one node, consul's
// /v1/health/service/<name>?passing (ten passing instances of a service,
// balanced) with a consul KV get of a 100-byte value: 32 requesters over
// keep-alive connections. The ratio of the two is the figure to read; the
// machine's load moves both alike.
func BenchmarkCatalogHTTP(b *testing.B) {
	n := startBenchNodeWith(b, func(c *node.Config) { c.HTTP = "127.0.0.1:0" })
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: benchConcurrency, MaxIdleConnsPerHost: benchConcurrency}}
	b.Cleanup(hc.CloseIdleConnections)
	base := "http://" + n.HTTPAddr()
	do := func(method, url string, body []byte) error {
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body) // drain: the connection goes back to the pool
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %d", method, url, resp.StatusCode)
		}
		return nil
	}
	for i := range 10 {
		reg := fmt.Sprintf(`{"ID":"web-%d","Name":"web","Port":%d,"Tags":["v1"],"Check":{"TTL":"1h","Status":"passing"}}`, i, 8000+i)
		if err := do(http.MethodPut, base+"/v1/agent/service/register", []byte(reg)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("kv-get", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			return do(http.MethodGet, base+"/v1/kv/"+benchKey(rng.IntN(benchKeys))+"?raw", nil)
		})
	})
	b.Run("health-passing", func(b *testing.B) {
		runConcurrent(b, benchConcurrency, func(rng *rand.Rand) error {
			return do(http.MethodGet, base+"/v1/health/service/web?passing", nil)
		})
	})
}
