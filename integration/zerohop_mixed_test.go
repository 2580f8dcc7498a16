package integration

// A cluster that mixes --text-route partition and local (a rolling change
// of the flag, or an operator's choice per node; docs/PROTOCOL.md,
// "Routing"): every node holds the routed subjects of the partitions it
// leads, whatever its own setting, so a request any server mapped reaches
// its primary with no hop, and one through the node whose server maps
// nothing is forwarded by it. Real processes, plain nats.go requests.

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// mixedCluster holds, besides the processes, the HTTP address of each
// node, where /metrics tells what it forwarded.
type mixedCluster struct {
	*procCluster
	http map[string]string
}

// forwarded sums roost_forwarded_total over the running nodes.
func (c *mixedCluster) forwarded(t *testing.T) float64 {
	t.Helper()
	sum := 0.0
	for _, name := range c.up() {
		sum += metricValue(t, scrapeAddr(t, c.http[name]), "roost_forwarded_total")
	}
	return sum
}

// mixedRound sets and reads back n keys through nc, failing the test on a
// wrong answer, and returns the fraction of the operations some node
// forwarded.
func (c *mixedCluster) mixedRound(t *testing.T, nc *nats.Conn, via string, round, n int) float64 {
	t.Helper()
	before := c.forwarded(t)
	for i := range n {
		key := fmt.Sprintf("mixed.%s.%d", via, i)
		val := fmt.Sprintf("v%d-%d", round, i)
		wantCode(t, "set "+key+" through "+via, request(t, nc, "roost.set."+key, []byte(val)), 200)
		r := request(t, nc, "roost.get."+key, nil)
		wantCode(t, "get "+key+" through "+via, r, 200)
		if string(r.body) != val {
			t.Fatalf("get %s through %s = %q, want %q", key, via, r.body, val)
		}
	}
	return (c.forwarded(t) - before) / float64(2*n)
}

// TestZeroHopMixedCluster: three processes, n3 with --text-route local.
// Requests through n1 and n2 (whose servers map them) reach their
// primaries, n3's partitions included, with no hop; requests through n3
// are forwarded by it. Then, with requesters on every node, a fourth node
// joins and leaves gracefully: every request is answered, every read sees
// its requester's last acknowledged write.
func TestZeroHopMixedCluster(t *testing.T) {
	// Not parallel: real processes, timed against a join and a leave.
	if testing.Short() {
		t.Skip("starts four processes")
	}
	c := &mixedCluster{newProcCluster(t, procClusterOptions{Size: 4}), map[string]string{}}
	for _, name := range c.names {
		c.http[name] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		c.extra[name] = []string{"--http", c.http[name]}
	}
	c.extra["n3"] = append(c.extra["n3"], "--text-route", "local")
	for _, name := range []string{"n1", "n2", "n3"} {
		c.launch(name)
	}
	c.waitFormed(20 * time.Second)
	ncs := map[string]*nats.Conn{}
	for _, name := range []string{"n1", "n2", "n3"} {
		ncs[name] = dialURL(t, c.url(name))
	}

	// Mapped by n1's and n2's servers: to the primary, n3 included (without
	// n3's subscriptions a third of them would reach n3's stand-ins and be
	// forwarded).
	for _, via := range []string{"n1", "n2"} {
		eventually(t, 5*time.Second, func() error {
			if f := c.mixedRound(t, ncs[via], via, 0, 50); f > 0.02 {
				return fmt.Errorf("through %s: %.2f of the operations forwarded, want about none", via, f)
			}
			return nil
		})
		f := c.mixedRound(t, ncs[via], via, 1, 150)
		t.Logf("through %s (partition): %.3f of 300 operations forwarded", via, f)
		if f > 0.02 {
			t.Fatalf("through %s: %.3f of the operations forwarded, want about none", via, f)
		}
	}
	// n3's server maps nothing: n3 serves what it leads, forwards the rest.
	if f := c.mixedRound(t, ncs["n3"], "n3", 1, 150); f < 0.4 || f > 0.9 {
		t.Fatalf("through n3 (local): %.3f of the operations forwarded, want about two thirds", f)
	} else {
		t.Logf("through n3 (local): %.3f of 300 operations forwarded", f)
	}

	// Through a join and a leave, requesters on every node.
	load := startMixedLoad(t, ncs, 3, 20)
	load.awaitRounds(t, 2, 10*time.Second)
	c.start("n4")
	c.waitFormed(10 * time.Second)
	load.awaitRounds(t, 2, 10*time.Second)
	c.stop("n4")
	c.waitFormed(10 * time.Second)
	load.awaitRounds(t, 2, 10*time.Second)
	load.stop()
	t.Logf("through the join and the leave: %s", load)
	for _, n := range load.notes {
		t.Log(n)
	}
	if load.ops.Load() == 0 {
		t.Fatal("no request was answered")
	}
	for _, f := range load.failures {
		t.Error(f)
	}
}

// mixedLoad is requesters through several nodes, each setting and reading
// back keys of its own, so that it knows what every read must see.
type mixedLoad struct {
	stopc     chan struct{}
	wg        sync.WaitGroup
	rounds    []atomic.Int64 // per requester: passes over its keys
	ops, n503 atomic.Int64
	mu        sync.Mutex
	failures  []string
	notes     []string // the 503s
}

func startMixedLoad(t *testing.T, ncs map[string]*nats.Conn, perNode, keys int) *mixedLoad {
	l := &mixedLoad{stopc: make(chan struct{}), rounds: make([]atomic.Int64, perNode*len(ncs))}
	t.Cleanup(l.stop)
	var names []string
	for name := range ncs {
		names = append(names, name)
	}
	slices.Sort(names)
	for i := range perNode * len(names) {
		via := names[i%len(names)]
		l.wg.Go(func() { l.requester(ncs[via], fmt.Sprintf("%s.r%d", via, i), &l.rounds[i], keys) })
	}
	return l
}

// requester loops over its keys: set, then get. A 503 is an answer (the
// forwarding budget ran out; a write's outcome is then unknown, so the
// next read may see either value); a timeout, no responders, another
// error or a wrong value is a failure.
func (l *mixedLoad) requester(nc *nats.Conn, who string, rounds *atomic.Int64, keys int) {
	may := make([][]string, keys) // the values a read of key i may see
	for round := 0; ; round++ {
		for i := range keys {
			select {
			case <-l.stopc:
				return
			default:
			}
			key := fmt.Sprintf("mixed.load.%s.%d", who, i)
			val := fmt.Sprintf("%d", round)
			if !l.answered(who, "set "+key, nc, "roost.set."+key, []byte(val)) {
				may[i] = append(may[i], val)
			} else {
				may[i] = []string{val}
			}
			r, ok := l.ask(who, "get "+key, nc, "roost.get."+key, nil)
			switch {
			case !ok:
			case r.code == 503:
			case r.code != 200 || !slices.Contains(may[i], string(r.body)):
				l.fail("%s: get %s = %d %q, want one of %q", who, key, r.code, r.body, may[i])
			default:
				may[i] = []string{string(r.body)}
			}
		}
		rounds.Add(1)
	}
}

// answered sends a set and reports whether it was acknowledged (200).
func (l *mixedLoad) answered(who, what string, nc *nats.Conn, subject string, body []byte) bool {
	r, ok := l.ask(who, what, nc, subject, body)
	if ok && r.code != 200 && r.code != 503 {
		l.fail("%s: %s = %d %s", who, what, r.code, r.err)
	}
	return ok && r.code == 200
}

// ask sends one request with a timeout past every bound, and reports
// whether it was answered with a reply (200 or 503).
func (l *mixedLoad) ask(who, what string, nc *nats.Conn, subject string, body []byte) (reply, bool) {
	r, err := send(nc, subject, body, boundPlain+time.Second)
	switch {
	case errors.Is(err, nats.ErrConnectionClosed):
		return r, false // the test ended
	case err != nil:
		l.fail("%s: %s: %v", who, what, err)
		return r, false
	}
	l.ops.Add(1)
	if r.code == 503 {
		l.n503.Add(1)
		l.mu.Lock()
		l.notes = append(l.notes, fmt.Sprintf("%s: %s at %s: 503 %s", who, what, time.Now().Format("15:04:05.000"), r.err))
		l.mu.Unlock()
	}
	return r, r.code == 200 || r.code == 503
}

func (l *mixedLoad) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) < 20 {
		l.failures = append(l.failures, fmt.Sprintf(format, args...))
	}
}

// awaitRounds waits until every requester has made n more passes.
func (l *mixedLoad) awaitRounds(t *testing.T, n int64, within time.Duration) {
	t.Helper()
	base := make([]int64, len(l.rounds))
	for i := range l.rounds {
		base[i] = l.rounds[i].Load()
	}
	eventually(t, within, func() error {
		for i := range l.rounds {
			if got := l.rounds[i].Load() - base[i]; got < n {
				return fmt.Errorf("requester %d made %d passes, want %d", i, got, n)
			}
		}
		return nil
	})
}

func (l *mixedLoad) stop() {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
}

func (l *mixedLoad) String() string {
	return fmt.Sprintf("%d requests answered (%d of them 503)", l.ops.Load(), l.n503.Load())
}
