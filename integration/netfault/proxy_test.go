package netfault_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/roostkv/roost/integration/netfault"
)

// ioWait bounds every read and dial of these tests: a cut must show well
// within it, so a timeout is a failure, never the expected outcome.
const ioWait = 5 * time.Second

// startEcho starts a line echo server on loopback and stops it, with every
// connection, when the test ends.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// startProxy puts a proxy in front of target and closes it when the test
// ends.
func startProxy(t *testing.T, target string) *netfault.Proxy {
	t.Helper()
	p, err := netfault.NewProxy(target)
	if err != nil {
		t.Fatalf("NewProxy: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// echoConn is a client connection with a line reader.
type echoConn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *echoConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioWait)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &echoConn{Conn: c, r: bufio.NewReader(c)}
}

// roundTrip sends a line and returns what came back.
func (c *echoConn) roundTrip(line string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(ioWait))
	if _, err := fmt.Fprintln(c, line); err != nil {
		return "", err
	}
	return c.r.ReadString('\n')
}

// wantEcho fails unless line comes back.
func wantEcho(t *testing.T, c *echoConn, line string) {
	t.Helper()
	got, err := c.roundTrip(line)
	if err != nil || got != line+"\n" {
		t.Fatalf("echo of %q = %q, %v", line, got, err)
	}
}

// wantClosed fails unless the connection ends (EOF or reset) before
// ioWait: a timeout means the proxy left it open.
func wantClosed(t *testing.T, c *echoConn, what string) {
	t.Helper()
	got, err := c.roundTrip("anyone?")
	if err == nil {
		t.Fatalf("%s: echo %q through a cut proxy", what, got)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("%s: still open after %s: %v", what, ioWait, err)
	}
}

func TestProxyForwards(t *testing.T) {
	p := startProxy(t, startEcho(t))
	c := dial(t, p.Addr())
	for i := range 100 {
		wantEcho(t, c, fmt.Sprintf("line %d", i))
	}
}

func TestProxyCutAndHeal(t *testing.T) {
	p := startProxy(t, startEcho(t))
	live := dial(t, p.Addr())
	wantEcho(t, live, "before the cut")

	p.Cut()
	wantClosed(t, live, "live connection")
	wantClosed(t, dial(t, p.Addr()), "connection dialled while cut")
	p.Cut() // twice is the same
	wantClosed(t, dial(t, p.Addr()), "connection dialled while cut twice")

	p.Heal()
	healed := dial(t, p.Addr())
	wantEcho(t, healed, "after the heal")
	wantClosed(t, live, "connection cut before the heal")

	// Again: a heal leaves the proxy cuttable.
	p.Cut()
	wantClosed(t, healed, "connection made after the heal")
	p.Heal()
	wantEcho(t, dial(t, p.Addr()), "after the second heal")
}

func TestProxyCutsEveryConnection(t *testing.T) {
	p := startProxy(t, startEcho(t))
	conns := make([]*echoConn, 20)
	for i := range conns {
		conns[i] = dial(t, p.Addr())
		wantEcho(t, conns[i], fmt.Sprintf("conn %d", i))
	}
	var wg sync.WaitGroup
	for range 4 { // Cut and Heal race each other and the dials below
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Cut()
			p.Heal()
		}()
	}
	wg.Wait()
	p.Cut()
	for i, c := range conns {
		wantClosed(t, c, fmt.Sprintf("conn %d", i))
	}
}

func TestProxyClose(t *testing.T) {
	p, err := netfault.NewProxy(startEcho(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := p.Addr()
	live := dial(t, addr)
	wantEcho(t, live, "before close")

	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(ioWait):
		t.Fatalf("Close did not return within %s with a live connection", ioWait)
	}
	p.Close() // idempotent
	wantClosed(t, live, "connection after Close")
	if c, err := net.DialTimeout("tcp", addr, ioWait); err == nil {
		c.Close()
		t.Fatalf("dial %s after Close succeeded", addr)
	}
}

func TestProxyTargetDown(t *testing.T) {
	// A target that does not listen: the proxy accepts and closes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	p := startProxy(t, target)
	wantClosed(t, dial(t, p.Addr()), "connection to a dead target")
}

func TestNewProxyRejectsBadTarget(t *testing.T) {
	if p, err := netfault.NewProxy("no-port"); err == nil {
		p.Close()
		t.Fatal("NewProxy(\"no-port\") succeeded")
	}
}
