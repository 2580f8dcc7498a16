package integration

// A network split between real processes, injected from outside: n3
// advertises a TCP proxy as its route address (--cluster-advertise), so
// every route to it runs through the proxy, and cutting the proxy isolates
// it. Writes on both sides, heal, converge.

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/integration/netfault"
)

// TestSplitHealsThroughAdvertise: three processes, R=2; n3's routes all
// run through a proxy (it listens on a port only the proxy dials and
// advertises the proxy's address; n1 joins it through the proxy, and n2
// learns the advertised address from n1's gossip). Keys are written with
// Roost-Ack: all before the split; the proxy is cut, and once each side
// sees the other dead, both sides write with ack=all: keys only the
// majority {n1, n2} writes, keys only the minority {n3} writes, keys both
// write (majority, then minority, then the majority again for half of
// them), and some keys from before the split on either side or both. Then
// the proxy heals.
//
// Asserted once the three see each other again, through every node, until
// a deadline (anti-entropy every second here):
//   - every key reads its acked write with the highest version, with that
//     write's value: a key written on one side only (or not during the
//     split) loses nothing at all; a key written on both sides keeps the
//     write with the highest version, and only the other side's older
//     writes may be lost (last writer wins, docs/replication.md). Ties of
//     version (documented as a limit) accept either value;
//   - versions follow the wall clock across the split (one machine, no
//     skew): of the writes on both sides, the later one has the higher
//     version, so last writer wins means the later write wins.
func TestSplitHealsThroughAdvertise(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs three processes through a proxy")
	}
	c := newProcCluster(t, procClusterOptions{Args: []string{
		"--replicas", "2", "--heartbeat-interval", "100ms", "--anti-entropy", "1s"}})
	proxy, err := netfault.NewProxy(c.routeAddr("n3"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	// n3 dials nobody and is dialled only through the proxy. n1 and n2
	// form first: n3 must learn no peer's own route address, which n1
	// would gossip to it about a route that is new to n1 after n3 joined.
	c.join["n1"] = []string{"nats://" + proxy.Addr()} // retried until n3 listens
	c.join["n2"] = []string{"nats://" + c.routeAddr("n1")}
	c.join["n3"] = nil
	c.extra["n3"] = []string{"--cluster-advertise", proxy.Addr()}
	c.launch("n1")
	c.launch("n2")
	c.waitFormed(20 * time.Second)
	c.launch("n3")
	c.waitFormed(20 * time.Second)

	h := newHistory()
	conn := map[string]*nats.Conn{}
	for _, name := range c.names {
		conn[name] = dialURL(t, c.url(name)) // no failover: each side writes through its own nodes
	}
	const n = 200
	// write sets keys prefix.from..prefix.(to-1) (every step-th), 4 at a
	// time through the nodes given, to "<key>@<phase>", and fails the test
	// unless nearly all are acked: both sides must really take writes.
	write := func(phase, prefix string, from, to, step int, via ...string) {
		t.Helper()
		var mu sync.Mutex
		var acked, sent int
		var wg sync.WaitGroup
		next := make(chan string)
		for w := range 4 {
			nc := conn[via[w%len(via)]]
			wg.Go(func() {
				for key := range next {
					ok := h.set(nc, key, key+"@"+phase, faultWriteTimeout).acked
					mu.Lock()
					sent++
					if ok {
						acked++
					}
					mu.Unlock()
				}
			})
		}
		for i := from; i < to; i += step {
			next <- fmt.Sprintf("%s.%d", prefix, i)
		}
		close(next)
		wg.Wait()
		what := fmt.Sprintf("%s.%d-%d (step %d) through %v", prefix, from, to-1, step, via)
		if acked < sent*9/10 {
			t.Fatalf("%s: only %d of %d writes acked: the split is not exercised; %s", what, acked, sent, h.summary())
		}
		t.Logf("%s: %d of %d writes acked", what, acked, sent)
	}

	write("before", "pre", 0, 300, 1, "n1", "n2", "n3")

	proxy.Cut()
	c.event("proxy cut")
	for _, maj := range []string{"n1", "n2"} {
		c.waitStatus(maj, "n3", "dead", 5*time.Second)
		c.waitStatus("n3", maj, "dead", 5*time.Second)
	}
	eventually(t, 5*time.Second, func() error {
		for name, want := range map[string]string{"n1": "[n1 n2]", "n2": "[n1 n2]", "n3": "[n3]"} {
			if s := serversOf(t, c.url(name)); s != want {
				return fmt.Errorf("%s routes over %s, want %s", name, s, want)
			}
		}
		return nil
	})
	c.event("split: {n1 n2} | {n3}")

	write("maj", "maj", 0, n, 1, "n1", "n2")
	write("maj", "pre", 0, 100, 1, "n1", "n2")
	write("maj1", "both", 0, n, 1, "n1", "n2")
	write("min", "min", 0, n, 1, "n3")
	write("min", "pre", 50, 150, 1, "n3")
	write("min", "both", 0, n, 1, "n3")
	write("maj2", "both", 0, n, 2, "n1", "n2")

	proxy.Heal()
	c.event("proxy healed")
	c.waitFormed(20 * time.Second)

	// Versions follow the wall clock: the later write of a key written on
	// both sides has the higher version.
	backwards := 0
	for _, key := range h.keys() {
		var last writeRec
		for _, w := range h.writes[key] {
			if !w.acked {
				continue
			}
			if w.start > last.end && w.version <= last.version {
				backwards++
				if backwards <= 5 {
					t.Errorf("%s: %q acked as v%d after %q was acked as v%d", key, w.value, w.version, last.value, last.version)
				}
			}
			if w.version > last.version {
				last = w
			}
		}
	}
	if backwards > 0 {
		t.Errorf("%d writes got a lower version than an earlier acked write of their key", backwards)
	}

	h.waitAllRight(t, c, c.names, 20*time.Second)
	minorityWins := 0
	for i := 1; i < n; i += 2 {
		if top := h.lastAcked(fmt.Sprintf("both.%d", i)); len(top) == 1 && top[0].value == fmt.Sprintf("both.%d@min", i) {
			minorityWins++
		}
	}
	t.Logf("converged: %s; the minority's later write won on %d of %d odd both.* keys", h.summary(), minorityWins, n/2)
}
