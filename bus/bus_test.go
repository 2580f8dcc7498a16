package bus

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestEmbeddedServerAndInProcessConnection(t *testing.T) {
	b, err := Open(Config{Name: "t1", Listen: "127.0.0.1:-1", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.Embedded() || !b.Conn().IsConnected() {
		t.Fatalf("embedded=%v connected=%v", b.Embedded(), b.Conn().IsConnected())
	}
	// Outside clients need the token; inside ones have it.
	if _, err := nats.Connect(b.ClientURL()); err == nil {
		t.Fatal("connected without the token")
	}
	nc, err := nats.Connect(b.ClientURL(), nats.Token("tok"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := b.Conn().Subscribe("ping", func(m *nats.Msg) { _ = m.Respond([]byte("pong")) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := b.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	if resp, err := nc.Request("ping", nil, 2*time.Second); err != nil || string(resp.Data) != "pong" {
		t.Fatalf("request over the bus = %v, %v", resp, err)
	}
	b.Close()
	b.Close() // idempotent
	if b.Conn().IsConnected() {
		t.Fatal("still connected after Close")
	}
}

func TestPortInUseFailsFast(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	_, err = Open(Config{Name: "t2", Listen: ln.Addr().String(), ReadyWait: 10 * time.Second})
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Open on a busy port = %v, want ErrNotReady naming the busy address", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("failing on a busy port took %s", took)
	}
}

// TestClusterRoutes clusters three embedded servers (b and c join a) with
// route authentication, and checks a request crosses the routes.
func TestClusterRoutes(t *testing.T) {
	open := func(name string, join ...string) *Bus {
		t.Helper()
		b, err := Open(Config{Name: name, Listen: "127.0.0.1:-1", ClusterListen: "127.0.0.1:-1", Join: join, Token: "tok"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	a := open("a")
	if a.ClusterAddr() == "" {
		t.Fatal("a has no cluster address")
	}
	b := open("b", a.ClusterAddr())
	c := open("c", "nats://"+a.ClusterAddr())
	deadline := time.Now().Add(10 * time.Second)
	for a.Routes() < 2 || b.Routes() < 2 || c.Routes() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("routes: a=%d b=%d c=%d, want a full mesh", a.Routes(), b.Routes(), c.Routes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	sub, err := c.Conn().Subscribe("x", func(m *nats.Msg) { _ = m.Respond([]byte("from c")) })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	_ = c.Conn().Flush()
	for time.Now().Before(deadline) {
		if resp, err := b.Conn().Request("x", nil, 200*time.Millisecond); err == nil && string(resp.Data) == "from c" {
			return
		}
	}
	t.Fatal("no request from b reached c's subscriber over the routes")
}

func TestJoinWithoutClusterListenAndBadJoin(t *testing.T) {
	if _, err := Open(Config{Name: "x", Listen: "127.0.0.1:-1", Join: []string{"nats://"}}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad --join: %v, want ErrConfig", err)
	}
	a, err := Open(Config{Name: "a2", Listen: "127.0.0.1:-1", ClusterListen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A joiner without --cluster-listen gets a random route port.
	b, err := Open(Config{Name: "b2", Listen: "127.0.0.1:-1", Join: []string{a.ClusterAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.ClusterAddr() == "" {
		t.Fatal("joiner has no route address")
	}
}
