package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// kvBucket is the NATS KV bucket of the KV baseline: memory storage, one
// replica, one value per key. The harness creates it (or takes it over) and
// deletes it at the end of the run.
const kvBucket = "roost_bench"

// kvServer is a nats-server with JetStream that the harness runs in its own
// process for the KV baseline when the node it started has none (a node's
// embedded server does not enable JetStream).
type kvServer struct {
	srv *server.Server
	dir string // JetStream's store directory; memory streams leave it empty
}

// startKVServer starts a JetStream server on a random loopback port with the
// limits of the node's own embedded server: payload limit and token.
func startKVServer(token string, maxPayload int32) (*kvServer, error) {
	dir, err := os.MkdirTemp("", "roost-bench-js-")
	if err != nil {
		return nil, fmt.Errorf("harness: kv server: %w", err)
	}
	srv, err := server.NewServer(&server.Options{
		ServerName:    "roost-bench-kv",
		Host:          "127.0.0.1",
		Port:          server.RANDOM_PORT,
		NoSigs:        true,
		NoLog:         true,
		MaxPayload:    maxPayload,
		Authorization: token,
		JetStream:     true,
		StoreDir:      dir,
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("harness: kv server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		_ = os.RemoveAll(dir)
		return nil, errors.New("harness: kv server: not ready within 10s")
	}
	return &kvServer{srv: srv, dir: dir}, nil
}

func (s *kvServer) URL() string { return s.srv.ClientURL() }

func (s *kvServer) Close() {
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	_ = os.RemoveAll(s.dir)
}

// hasJetStream reports whether the server nc is connected to serves
// JetStream to nc's account.
func hasJetStream(ctx context.Context, nc *nats.Conn) bool {
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	_, err = js.AccountInfo(ctx)
	return err == nil
}

// kvTarget is NATS KV through nats.go's jetstream package: Get and Put on
// one bucket over one shared connection.
type kvTarget struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	timeout time.Duration // per request, and how long a preload publish waits for room
}

// openKV connects to url and creates (or updates) the baseline's bucket.
func openKV(ctx context.Context, url string, cfg Config) (*kvTarget, error) {
	nc, err := dial(url, cfg.Token, "kv", cfg.Timeout)
	if err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.Timeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("harness: kv: %w", err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      kvBucket,
		Description: "roost bench baseline; deleted at the end of the run",
		History:     1,
		Storage:     jetstream.MemoryStorage,
		Replicas:    1,
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("harness: kv: create bucket %s on %s: %w", kvBucket, url, err)
	}
	return &kvTarget{nc: nc, js: js, kv: kv, timeout: cfg.Timeout}, nil
}

// preload writes every key with value, pipelined: asynchronous publishes to
// the bucket's subjects, which is what Put does one at a time. A publish
// waits up to the timeout for acks to make room (nats.go's default, 200 ms,
// failed the preload on a loaded machine).
func (t *kvTarget) preload(ctx context.Context, keys keyspace, value []byte) error {
	for _, k := range keys {
		if _, err := t.js.PublishAsync("$KV."+kvBucket+"."+k, value, jetstream.WithStallWait(t.timeout)); err != nil {
			return fmt.Errorf("harness: kv preload: %w", err)
		}
	}
	select {
	case <-t.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	if n := t.js.PublishAsyncPending(); n > 0 {
		return fmt.Errorf("harness: kv preload: %d writes unacknowledged", n)
	}
	st, err := t.kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("harness: kv preload: %w", err)
	}
	if st.Values() < uint64(len(keys)) {
		return fmt.Errorf("harness: kv preload: bucket holds %d values, want %d", st.Values(), len(keys))
	}
	return nil
}

func (t *kvTarget) Get(key string) error {
	e, err := t.kv.Get(context.Background(), key)
	if err != nil {
		return err
	}
	if len(e.Value()) == 0 {
		return errEmptyReply
	}
	return nil
}

func (t *kvTarget) Set(key string, value []byte) error {
	_, err := t.kv.Put(context.Background(), key, value)
	return err
}

// Close deletes the bucket and closes the connection.
func (t *kvTarget) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = t.js.DeleteKeyValue(ctx, kvBucket)
	t.nc.Close()
}
