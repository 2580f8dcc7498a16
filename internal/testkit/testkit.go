// Package testkit holds the helpers Roost's tests share: a real embedded
// NATS server on a random loopback port, a connection to it, and polling
// with a deadline. Tests never sleep to let things settle; they poll.
//
//	srv := testkit.StartNATS(t)
//	nc := testkit.Connect(t, srv.ClientURL())
//	testkit.Eventually(t, 5*time.Second, func() error { ... })
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// StartNATS starts an embedded nats-server on a random loopback port,
// changed by edit, and shuts it down when the test ends.
func StartNATS(tb testing.TB, edit ...func(*server.Options)) *server.Server {
	tb.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true}
	for _, e := range edit {
		e(opts)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		srv.Shutdown()
		tb.Fatal("testkit: nats-server not ready within 5s")
	}
	tb.Cleanup(srv.Shutdown)
	return srv
}

// Connect connects to url and closes the connection when the test ends.
func Connect(tb testing.TB, url string, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// Eventually polls cond every 10 ms until it returns nil, and fails the
// test with cond's last error when within passes first.
func Eventually(tb testing.TB, within time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("not within %s: %v", within, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// LogBuffer is a bytes.Buffer safe for one writer (a process's output, a
// logger) and readers polling it at the same time.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes is a copy of what was written so far.
func (b *LogBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// String is what was written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
