package harness

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

// Target names, as rows of the report show them.
const (
	NameRoost = "roost" // Roost through Config.Path
	NameEcho  = "echo"  // the raw NATS echo responder
	NameKV    = "kv"    // NATS JetStream KV, memory storage, one replica
)

// setup builds everything the run measures: the deployment (started here or
// reached at Config.Server), Roost's target with its keys preloaded, and
// with Compare the two baselines, in the order echo, roost, kv.
func (r *runner) setup(ctx context.Context) error {
	ep, maxPayload, echoConn, err := r.deployment(ctx)
	if err != nil {
		return err
	}
	if echoConn != nil {
		r.onClose(echoConn.Close)
	}
	path, err := pathFor(r.cfg.Path)
	if err != nil {
		return err
	}
	roost, err := path.Open(ep, r.cfg)
	if err != nil {
		return err
	}
	r.onClose(roost.Close)
	if r.cfg.Server != "" {
		// From the first preloaded key on, the deployment holds keys of
		// this run: removed when it ends, however it ends.
		r.onClose(r.removeKeys)
	}
	if r.cfg.Preloaded {
		r.note("roost: no preload: the deployment already held the %d keys under %q (Config.Preloaded)", r.cfg.Keys, r.cfg.KeyPrefix)
	} else if err := r.preloadRoost(ctx, ep.URL); err != nil {
		return err
	}
	roostRow := &measured{name: NameRoost, server: ep.URL, t: roost}
	if r.cfg.Path == PathHTTP {
		roostRow.server = "http://" + ep.HTTP
	}

	if !r.cfg.Compare {
		r.targets = []*measured{roostRow}
		return r.setupExtra()
	}
	echo, err := r.setupEcho(ep.URL, echoConn)
	if err != nil {
		return err
	}
	r.targets = []*measured{echo, roostRow}
	kv, err := r.setupKV(ctx, maxPayload)
	if err != nil {
		return err
	}
	if kv != nil {
		r.targets = append(r.targets, kv)
	}
	return r.setupExtra()
}

// setupExtra opens Config.Extra's targets, measured after the others.
func (r *runner) setupExtra() error {
	for _, x := range r.cfg.Extra {
		t, err := x.Open()
		if err != nil {
			return fmt.Errorf("harness: %s: %w", x.Name, err)
		}
		r.onClose(t.Close)
		r.targets = append(r.targets, &measured{name: x.Name, t: t})
	}
	return nil
}

// deployment starts a node in this process, or reaches Config.Server. It
// returns where the deployment listens, the payload limit of the node it
// started (0 with Config.Server), and with Config.Compare a connection for
// the echo responder: in-process to the node's embedded server when the
// harness started the node, else a connection of its own to the server.
// With Config.Procs the nodes are processes: see procDeployment.
func (r *runner) deployment(ctx context.Context) (ep Endpoint, maxPayload int32, echoConn *nats.Conn, err error) {
	if r.cfg.Server != "" {
		if r.cfg.Compare && r.cfg.EchoServer == "" {
			echoConn, err = dial(r.cfg.Server, r.cfg.Token, "echo-responder", r.cfg.Timeout)
		}
		return Endpoint{URL: r.cfg.Server, HTTP: r.cfg.HTTPAddr}, 0, echoConn, err
	}
	if r.cfg.Procs {
		return r.procDeployment(ctx)
	}
	nodes, err := r.startNodes()
	if err != nil {
		return ep, 0, nil, err
	}
	n := nodes[0] // the targets talk to the first node; the others lead their partitions
	// The node's endpoints subscribe on its in-process connection without
	// waiting for the server; a round trip on it makes sure the server has
	// them before the preload asks.
	if err := n.Bus().Conn().Flush(); err != nil {
		return ep, 0, nil, fmt.Errorf("harness: node: %w", err)
	}
	if r.cfg.Compare {
		echoConn, err = n.Bus().Connect(nats.Name("roost bench echo-responder"), nats.Token(r.cfg.Token))
		if err != nil {
			return ep, 0, nil, fmt.Errorf("harness: echo connection: %w", err)
		}
	}
	return Endpoint{URL: n.ClientURL(), HTTP: n.HTTPAddr()}, int32(n.Bus().MaxPayload()), echoConn, nil
}

// startNodes starts Config.Nodes nodes in this process, clustered through
// the first one's routes, and waits until every node routes by a table over
// all of them.
func (r *runner) startNodes() ([]*node.Node, error) {
	var nodes []*node.Node
	for i := range r.cfg.Nodes {
		ncfg := node.DefaultConfig()
		ncfg.Name = fmt.Sprintf("bench%d", i+1)
		ncfg.Listen = "127.0.0.1:-1"
		ncfg.HTTP = r.cfg.nodeHTTP(i)
		ncfg.Token = r.cfg.Token
		ncfg.Prefix = r.cfg.Prefix
		ncfg.Logger = r.log
		ncfg.TextRoute = r.cfg.TextRoute
		if r.cfg.Nodes > 1 {
			ncfg.ClusterListen = "127.0.0.1:-1"
			if i > 0 {
				ncfg.Join = []string{nodes[0].Bus().ClusterAddr()}
			}
		}
		n, err := node.New(ncfg)
		if err != nil {
			return nil, fmt.Errorf("harness: node: %w", err)
		}
		if err := n.Start(); err != nil {
			return nil, fmt.Errorf("harness: node: %w", err)
		}
		r.onClose(n.Stop)
		nodes = append(nodes, n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !formed(nodes) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("harness: %d nodes did not form a cluster within 10s", len(nodes))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nodes, nil
}

// formed reports whether every node routes over all the nodes.
func formed(nodes []*node.Node) bool {
	for _, n := range nodes {
		if len(n.Status().Cluster.Servers) != len(nodes) {
			return false
		}
	}
	return true
}

// preloadRoost writes every key of the keyspace with the Go client's MSet
// (the binary batch API), so that gets hit and sets overwrite.
func (r *runner) preloadRoost(ctx context.Context, url string) error {
	r.emit(Event{Phase: PhasePreload, Target: NameRoost})
	nc, err := dial(url, r.cfg.Token, "preload", r.cfg.Timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := client.New(nc, client.WithPrefix(r.cfg.Prefix), client.WithTimeout(r.cfg.Timeout), client.WithBatching(false))
	if err != nil {
		return err
	}
	defer c.Close()
	items := make([]client.SetItem, len(r.keys))
	for i, k := range r.keys {
		items[i] = client.SetItem{Key: k, Value: r.value, Options: []client.WriteOption{client.Ack(r.cfg.Ack)}}
	}
	if _, err := c.MSet(ctx, items...); err != nil {
		return fmt.Errorf("harness: preload %d keys into roost at %s: %w", len(items), url, err)
	}
	return nil
}

// setupEcho starts the echo responder on echoConn and the echo target on a
// connection of its own to url, as Roost's target has.
func (r *runner) setupEcho(url string, echoConn *nats.Conn) (*measured, error) {
	var resp *echoResponder
	if r.cfg.EchoServer != "" {
		url, resp = r.cfg.EchoServer, &echoResponder{base: r.cfg.EchoBase}
		r.note("echo: served by another process at %s under %s (Config.EchoServer)", url, resp.base)
	} else {
		var err error
		if resp, err = startEcho(echoConn, r.cfg.EchoSubject, r.cfg.ValueSize); err != nil {
			return nil, err
		}
	}
	nc, err := dial(url, r.cfg.Token, "echo", r.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	t := newEchoTarget(nc, resp, r.cfg.EchoSubject, r.cfg.Timeout)
	r.onClose(t.Close)
	return &measured{name: NameEcho, server: url, t: t}, nil
}

// setupKV finds or starts a JetStream server for the KV baseline, creates
// its bucket and preloads it. With --server and no --kv-server, a server
// without JetStream means no KV row (and a note saying so), not a failure.
func (r *runner) setupKV(ctx context.Context, maxPayload int32) (*measured, error) {
	url := r.cfg.KVServer
	switch {
	case url != "":
		r.note("kv: NATS KV (memory storage, 1 replica) on --kv-server %s", url)
	case r.cfg.Server != "":
		nc, err := dial(r.cfg.Server, r.cfg.Token, "kv-probe", r.cfg.Timeout)
		if err != nil {
			return nil, err
		}
		ok := hasJetStream(ctx, nc)
		nc.Close()
		if !ok {
			r.note("kv: skipped: %s has no JetStream for this account (a roost node's embedded server never has); give --kv-server nats://... of a server with JetStream", r.cfg.Server)
			return nil, nil
		}
		url = r.cfg.Server
		r.note("kv: NATS KV (memory storage, 1 replica) on the --server itself, %s", url)
	default:
		srv, err := startKVServer(r.cfg.Token, maxPayload)
		if err != nil {
			return nil, err
		}
		r.onClose(srv.Close)
		url = srv.URL()
		r.note("kv: NATS KV (memory storage, 1 replica) on a second nats-server embedded in this process with JetStream on, same loopback and limits as the node's (whose embedded server has no JetStream); echo and roost share the node's server")
	}
	t, err := openKV(ctx, url, r.cfg)
	if err != nil {
		return nil, err
	}
	r.onClose(t.Close)
	r.emit(Event{Phase: PhasePreload, Target: NameKV})
	if err := t.preload(ctx, r.keys, r.value); err != nil {
		return nil, err
	}
	return &measured{name: NameKV, server: url, t: t}, nil
}

// randomValue is the value every write carries: n random bytes, so that no
// layer can compress it away.
func randomValue(n int) []byte {
	v := make([]byte, n)
	_, _ = rand.Read(v)
	return v
}

// errNoOps is returned when a target completed no operation in a phase.
var errNoOps = errors.New("no operation succeeded")
