package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// kvPath is the consul KV API's path; the key follows it (docs/http.md).
const kvPath = "/v1/kv/"

// hdrConsulToken carries the token on every request, as the node's
// requireToken reads it.
const hdrConsulToken = "X-Consul-Token"

// errSetRefused is returned when a PUT answers false: a CAS that did not
// hold, which a plain write never asks for.
var errSetRefused = errors.New("harness: PUT answered false")

// httpPath is Roost's consul-compatible KV API over HTTP/1.1, as curl or a
// consul client would use it: GET /v1/kv/<key>?raw and PUT /v1/kv/<key>.
// HTTP/1.1 has one request in flight per connection, so the workers share a
// pool of up to Config.Concurrency keep-alive connections instead of one.
type httpPath struct{}

func (httpPath) Name() string { return PathHTTP }

func (httpPath) Open(ep Endpoint, cfg Config) (Target, error) {
	if ep.HTTP == "" {
		return nil, fmt.Errorf("%w: --path http: no HTTP API address for %s (--http-addr)", ErrConfig, ep.URL)
	}
	tr := &http.Transport{
		Proxy:               nil, // the node itself, never a proxy in between
		MaxIdleConns:        cfg.Concurrency,
		MaxIdleConnsPerHost: cfg.Concurrency, // every worker's connection goes back to the pool
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true, // values are random bytes, and the node never compresses
	}
	return &httpTarget{
		c:     &http.Client{Transport: tr, Timeout: cfg.Timeout},
		base:  "http://" + ep.HTTP,
		token: cfg.Token,
	}, nil
}

type httpTarget struct {
	c     *http.Client
	base  string // http://host:port of the node's HTTP API
	token string // "" = none
}

func (t *httpTarget) Get(key string) error {
	body, err := t.do(http.MethodGet, key, "raw", nil)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return errEmptyReply
	}
	return nil
}

func (t *httpTarget) Set(key string, value []byte) error {
	body, err := t.do(http.MethodPut, key, "", value) // "true\n"
	if err != nil {
		return err
	}
	if !bytes.Equal(bytes.TrimSpace(body), []byte("true")) {
		return fmt.Errorf("%w: %q", errSetRefused, body)
	}
	return nil
}

func (t *httpTarget) Close() { t.c.CloseIdleConnections() }

// do sends one request on key and returns the body of a 200 answer, read to
// the end so that the connection is reused. The key goes into URL.Path
// unescaped: the transport escapes it on the wire (EscapedPath) and the
// node's mux unescapes it back into {key...}.
func (t *httpTarget) do(method, key, query string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, t.base, rd)
	if err != nil {
		return nil, fmt.Errorf("harness: %s %s: %w", method, key, err)
	}
	req.URL.Path = kvPath + key
	req.URL.RawQuery = query
	if t.token != "" {
		req.Header.Set(hdrConsulToken, t.token)
	}
	resp, err := t.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, statusErr(resp)
	}
	return io.ReadAll(resp.Body)
}

// statusErr reads a failed answer's text (the node's http.Error) into an
// error, and drains the rest so that the connection can be reused.
func statusErr(resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, resp.Body)
	return fmt.Errorf("harness: %s %s: %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, bytes.TrimSpace(msg))
}
