package netfault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds the proxy's connect to its target.
const dialTimeout = 2 * time.Second

// acceptBackoff is the pause after a failed Accept other than a closed
// listener (out of file descriptors, say), before trying again.
const acceptBackoff = 5 * time.Millisecond

// Proxy forwards every TCP connection accepted on Addr to a target, until
// the test cuts it. While cut, it closes the connections it carries and
// closes every new one as soon as it is accepted, so a client's dial
// succeeds but its first read sees EOF; it keeps its port, so Heal needs no
// new listen. When either side of a forwarded connection closes (or fails),
// the proxy closes both. All methods may be called by several goroutines at
// once.
type Proxy struct {
	target string
	ln     net.Listener

	ctx    context.Context    // cancelled by Close: aborts dials in flight
	cancel context.CancelFunc // of ctx
	wg     sync.WaitGroup     // the accept loop and one goroutine per connection

	mu     sync.Mutex
	cut    bool                  // while true, nothing is forwarded
	closed bool                  // set by Close
	conns  map[net.Conn]struct{} // both ends of every forwarded connection
}

// NewProxy listens on 127.0.0.1 (a random port: see Addr) and forwards
// every connection to target (host:port), which it dials per connection:
// target need not be listening yet.
func NewProxy(target string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(target); err != nil {
		return nil, fmt.Errorf("netfault: target %q: %w", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netfault: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		target: target,
		ln:     ln,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[net.Conn]struct{}),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the host:port clients dial to reach the target through the proxy.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection the proxy carries and, until Heal, every
// connection it accepts. It returns once the live ones are closed.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.closeConnsLocked()
}

// Heal makes the proxy forward new connections again. Connections cut
// before stay closed: their clients reconnect.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// Close stops listening, closes every connection and returns once every
// goroutine of the proxy has ended. It is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.closeConnsLocked()
		_ = p.ln.Close()
		p.cancel()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// acceptLoop accepts until the listener closes, handing each connection to
// a goroutine of its own.
func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-p.ctx.Done(): // closed
				return
			case <-time.After(acceptBackoff): // out of file descriptors, say
			}
			continue
		}
		if !p.track(c) {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward dials the target for the accepted connection down and copies
// bytes both ways until either side ends, then closes both.
func (p *Proxy) forward(down net.Conn) {
	defer p.wg.Done()
	defer p.untrack(down)
	d := net.Dialer{Timeout: dialTimeout}
	up, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(up) { // cut or closed while dialling
		_ = up.Close()
		return
	}
	defer p.untrack(up)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, down)
		_ = up.Close()
		_ = down.Close()
	}()
	_, _ = io.Copy(down, up)
	_ = up.Close()
	_ = down.Close()
	<-done
}

// track registers c as carried, unless the proxy is cut or closed: then it
// reports false and the caller closes c.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut || p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// untrack closes c and forgets it.
func (p *Proxy) untrack(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// closeConnsLocked closes every carried connection; p.mu is held. The
// goroutines forwarding them see the close, end and untrack them.
func (p *Proxy) closeConnsLocked() {
	for c := range p.conns {
		_ = c.Close()
	}
}
