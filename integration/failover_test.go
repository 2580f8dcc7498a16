package integration

// Failover: nodes die the way kill -9 kills a process (node.Kill: no leave,
// no handover) while clients write, and what was acknowledged must survive
// on the nodes that are left (docs/replication.md).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/node"
	"github.com/roostkv/roost/partition"
)

// opTimeout outlasts every bound of the server (a forward retries for 5s, an
// ack=all write waits up to AckTimeout, 5s, for its replicas), so that a
// request ends with the server's answer rather than the client giving up.
const opTimeout = 12 * time.Second

// getLatest reads key through nc until it gets an answer other than 503 (no
// primary yet) or deadline passes; it returns the last reply. A request
// that gets no answer is tried again: one that a dying node's server took
// is lost with it.
func getLatest(nc *nats.Conn, key string, deadline time.Time) (reply, error) {
	for {
		r, err := send(nc, "roost.get."+key, nil, 2*time.Second)
		if err == nil && r.code != 503 {
			return r, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("%d %s", r.code, r.err)
			}
			return r, err
		}
		time.Sleep(10 * time.Millisecond) // a retry pause, not a settle
	}
}

// writeTimeout is how long a failover writer waits for an answer before it
// moves on: a write caught by the crash must not stall its writer for the
// server's own bounds (5s), so the writers keep writing through the
// failover. The write may still be applied after the writer gave up.
const writeTimeout = time.Second

// outcome is what came of one write.
type outcome uint8

const (
	acked       outcome = iota // answered 200: every live owner applied it
	gaveUp                     // no answer within writeTimeout: the server may still apply it, at any later time
	refused                    // answered with an error: it may have applied, but not after the answer
	undelivered                // no node received it (no responders): applied nowhere
)

// attempt is one write of a key and what came of it.
type attempt struct {
	value   string
	outcome outcome
	version uint64        // of an acked write
	why     string        // of a write that was not acked
	at      time.Duration // when it was sent, since the writers started
}

// keyHistory is the writes of one key, in the order its only writer made
// them, one at a time.
type keyHistory []attempt

// lastAcked is the index of the last acknowledged write, -1 when none.
func (h keyHistory) lastAcked() int {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].outcome == acked {
			return i
		}
	}
	return -1
}

// check says what is wrong, if anything, with reading r once the writes in
// h have been answered. The key must hold the last acknowledged value at
// its acknowledged version, or, at a higher version, the value of a write
// whose outcome is unknown and that may have taken effect after that
// acknowledgement: one sent after it, or one sent before it that the writer
// gave up on (the server may have been still on it). A value refused before
// the acknowledgement, an older acknowledged value, or a value no node
// received puts the key back in time or out of thin air.
func (h keyHistory) check(r reply) error {
	last := h.lastAcked()
	switch {
	case r.code == 404 && last < 0:
		return nil // nothing acknowledged, and none of the unknown writes applied
	case r.code == 404:
		return fmt.Errorf("absent; %q was acknowledged at version %d", h[last].value, h[last].version)
	case r.code != 200:
		return fmt.Errorf("get answered %d %s", r.code, r.err)
	}
	value := string(r.body)
	version, err := strconv.ParseUint(r.hdr.Get("Roost-Version"), 10, 64)
	if err != nil {
		return fmt.Errorf("value %q without a version", value)
	}
	if last >= 0 && value == h[last].value {
		if version != h[last].version {
			return fmt.Errorf("%q at version %d, acknowledged at version %d", value, version, h[last].version)
		}
		return nil
	}
	i := slices.IndexFunc(h, func(a attempt) bool { return a.value == value })
	if i < 0 {
		return fmt.Errorf("%q at version %d was never written", value, version)
	}
	a := h[i]
	switch {
	case a.outcome == undelivered:
		return fmt.Errorf("%q at version %d, a write no node received", value, version)
	case last < 0:
		return nil // an unknown write, and nothing acknowledged
	case version <= h[last].version:
		return fmt.Errorf("%q at version %d, not above the acknowledged %q at version %d", value, version, h[last].value, h[last].version)
	case i > last:
		return nil // an unknown write after the last acknowledged one
	case a.outcome == gaveUp:
		return nil // still on the server when the later write was acknowledged
	}
	return fmt.Errorf("%q (sent at %s, %s) at version %d overwrote %q, acknowledged later at version %d",
		value, a.at, a.why, version, h[last].value, h[last].version)
}

func (h keyHistory) String() string {
	var b strings.Builder
	for _, a := range h[max(0, len(h)-6):] {
		if a.outcome == acked {
			fmt.Fprintf(&b, "\n    %s %q acked v%d", a.at, a.value, a.version)
		} else {
			fmt.Fprintf(&b, "\n    %s %q unknown: %s", a.at, a.value, a.why)
		}
	}
	return b.String()
}

// TestKeyHistoryCheck proves the check of TestAckAllSurvivesKill can fail:
// hand-built histories of one key, and what a read may find after them.
func TestKeyHistoryCheck(t *testing.T) {
	t.Parallel()
	ack := func(value string, version uint64) attempt {
		return attempt{value: value, outcome: acked, version: version}
	}
	unknown := func(value string, o outcome) attempt { return attempt{value: value, outcome: o, why: "test"} }
	found := func(value string, version uint64) reply {
		return reply{code: 200, body: []byte(value), hdr: nats.Header{"Roost-Version": {strconv.FormatUint(version, 10)}}}
	}
	absent := reply{code: 404}
	h := keyHistory{ack("a", 10), unknown("b", gaveUp), unknown("c", refused), ack("d", 20), unknown("e", gaveUp), unknown("f", undelivered)}
	tests := []struct {
		name string
		h    keyHistory
		read reply
		ok   bool
	}{
		{"the last acknowledged value", h, found("d", 20), true},
		{"an unknown write after it", h, found("e", 25), true},
		{"a write given up before it, applied late", h, found("b", 30), true},
		{"nothing acknowledged, nothing applied", keyHistory{unknown("x", gaveUp)}, absent, true},
		{"nothing acknowledged, an unknown write applied", keyHistory{unknown("x", refused)}, found("x", 3), true},
		{"the acknowledged value lost", h, absent, false},
		{"an older acknowledged value", h, found("a", 10), false},
		{"an older acknowledged value at a new version", h, found("a", 30), false},
		{"the last acknowledged value at another version", h, found("d", 21), false},
		{"an unknown write below the acknowledged version", h, found("e", 15), false},
		{"a write refused before the acknowledged one, applied after it", h, found("c", 30), false},
		{"a write no node received", h, found("f", 30), false},
		{"a value never written", h, found("z", 30), false},
		{"an error instead of a value", h, reply{code: 503, err: "no primary"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.h.check(tt.read)
			if (err == nil) != tt.ok {
				t.Fatalf("check = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestAckAllSurvivesKill: writers keep writing with ack=all through the two
// nodes that survive while the third is killed. Afterwards every key holds
// its last acknowledged write (or a later one whose outcome is unknown), on
// both survivors' copies, and the killed node's partitions answer again
// within 3s of the crash.
func TestAckAllSurvivesKill(t *testing.T) {
	// Not parallel: the ack must come within 3 s of the kill, on 100 ms heartbeats.
	nodes := startCluster(t, 3, func(_ int, c *node.Config) { c.Replicas = 2 })
	victim, survivors := nodes[2], nodes[:2]
	table := nodes[0].Table()
	ledByVictim := func(key string) bool {
		return table.Owners[partition.Of(key, table.Partitions)][0] == victim.Name()
	}

	const writers, keysPerWriter = 4, 50
	probe := connect(t, survivors[0])
	// A key the victim leads, written before the crash: how long it takes to
	// answer again is the failover time.
	probeKey := keyLedBy(t, survivors[0], "probe.", victim.Name())
	r := request(t, probe, "roost.set."+probeKey, []byte("before the crash"), "Roost-Ack", "all")
	wantCode(t, "set the probe key", r, 200)
	// A key a survivor leads and the victim replicates, in a partition the
	// writers leave alone: no later write of theirs stands in for its ack.
	written := map[int]bool{}
	for w := range writers {
		for k := range keysPerWriter {
			written[partition.Of(fmt.Sprintf("w%d.k%d", w, k), table.Partitions)] = true
		}
	}
	replicatedKey := ""
	for i := 0; replicatedKey == ""; i++ {
		key := fmt.Sprintf("replicated.%d", i)
		p := partition.Of(key, table.Partitions)
		if owners := table.Owners[p]; owners[0] == survivors[0].Name() && owners[1] == victim.Name() && !written[p] {
			replicatedKey = key
		}
	}

	histories := make([][]keyHistory, writers) // writer -> key -> writes
	start := time.Now()
	var killedAt time.Duration // since start; written before the writers are told to stop
	// The writers count the writes to keys the victim led that they began
	// after the kill and got acknowledged; until the kill, no write is after it.
	var killedAtNS, victimAcks atomic.Int64
	killedAtNS.Store(math.MaxInt64)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for w := range writers {
		nc := connect(t, survivors[w%len(survivors)])
		histories[w] = make([]keyHistory, keysPerWriter)
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				k := n % keysPerWriter
				a := attempt{value: fmt.Sprintf("w%d.%d", w, n), at: time.Since(start)}
				r, err := send(nc, fmt.Sprintf("roost.set.w%d.k%d", w, k), []byte(a.value), writeTimeout, "Roost-Ack", "all")
				switch {
				case errors.Is(err, nats.ErrNoResponders):
					a.outcome, a.why = undelivered, err.Error()
				case err != nil:
					a.outcome, a.why = gaveUp, err.Error()
				case r.code != 200:
					a.outcome, a.why = refused, fmt.Sprintf("%d %s", r.code, r.err)
				default:
					a.outcome = acked
					if a.version, err = strconv.ParseUint(r.hdr.Get("Roost-Version"), 10, 64); err != nil {
						t.Errorf("set w%d.k%d answered 200 without a Roost-Version", w, k)
						a.outcome, a.why = gaveUp, "200 without a version"
					}
					if int64(a.at) > killedAtNS.Load() && ledByVictim(fmt.Sprintf("w%d.k%d", w, k)) {
						victimAcks.Add(1)
					}
				}
				histories[w][k] = append(histories[w][k], a)
			}
		})
	}

	// Kill the victim once the writers are going, and time how long its
	// partitions go unanswered.
	waitUntil := func(d time.Duration) {
		select {
		case <-time.After(time.Until(start.Add(d))):
		case <-ctx.Done():
		}
	}
	waitUntil(500 * time.Millisecond)
	routes := []int{survivors[0].Bus().Routes(), survivors[1].Bus().Routes()}
	killedAt = time.Since(start)
	killedAtNS.Store(int64(killedAt))
	kill := time.Now()
	killed := make(chan struct{})
	go func() { defer close(killed); victim.Kill() }()
	defer func() { <-killed }()

	// An ack=all write to a partition the victim replicated, sent once no
	// server routes to the victim but before its death is detected: it
	// waits for the dead replica's ack, and is acknowledged once the new
	// replica has its copy.
	eventually(t, 2*time.Second, func() error {
		for i, s := range survivors {
			if n := s.Bus().Routes(); n > routes[i]/2 {
				return fmt.Errorf("%s has %d routes, %d before the kill", s.Name(), n, routes[i])
			}
		}
		return nil
	})
	ackWrite := make(chan error, 1)
	go func() {
		r, err := send(probe, "roost.set."+replicatedKey, []byte("after the crash"), opTimeout, "Roost-Ack", "all")
		switch took := time.Since(kill).Round(time.Millisecond); {
		case err != nil:
			ackWrite <- fmt.Errorf("no answer %s after the kill: %w", took, err)
		case r.code != 200:
			ackWrite <- fmt.Errorf("%d %s, %s after the kill", r.code, r.err, took)
		case took > 3*time.Second:
			ackWrite <- fmt.Errorf("acknowledged only %s after the kill", took)
		default:
			t.Logf("an ack=all write waiting for the dead replica was acknowledged %s after the kill", took)
			ackWrite <- nil
		}
	}()

	var failover time.Duration
	for {
		// A short timeout: a get the dying node's server took is lost with
		// it, and must not hide when the partition answers again.
		r, err := send(probe, "roost.get."+probeKey, nil, 200*time.Millisecond)
		if err == nil && r.code == 200 {
			if string(r.body) != "before the crash" {
				t.Errorf("probe %s = %q after the crash, want %q", probeKey, r.body, "before the crash")
			}
			failover = time.Since(kill)
			break
		}
		if err == nil && r.code != 503 {
			t.Errorf("probe %s answered %d %s after the crash: an acknowledged write is lost", probeKey, r.code, r.err)
			failover = time.Since(kill)
			break
		}
		if time.Since(kill) > 5*time.Second {
			failover = time.Since(kill)
			break
		}
		time.Sleep(5 * time.Millisecond) // a retry pause
	}
	t.Logf("%s's partitions answered again %s after it was killed", victim.Name(), failover.Round(time.Millisecond))
	if failover > 3*time.Second {
		t.Errorf("a partition led by the killed node answered again only after %s, want < 3s", failover)
	}
	if err := <-ackWrite; err != nil {
		t.Errorf("ack=all set of %s, replicated by %s: %v", replicatedKey, victim.Name(), err)
	}
	// Write on for 1.5 s after the kill, and until a write to a key the
	// victim led is acknowledged (on a starved machine the writers may
	// manage only a few writes in 1.5 s; the check below needs one).
	waitUntil(killedAt + 1500*time.Millisecond)
	for deadline := time.Now().Add(10 * time.Second); victimAcks.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // a poll
	}
	stop()
	wg.Wait()
	t.Logf("writers stopped %s after the kill", time.Since(kill).Round(time.Millisecond))

	// The writers made progress after the crash, on the victim's keys too.
	var nAcked, unknown, ackedAfter, ackedAfterOnVictims int
	outcomes := map[string]int{}
	for w := range writers {
		for k, h := range histories[w] {
			key := fmt.Sprintf("w%d.k%d", w, k)
			for _, a := range h {
				if a.outcome != acked {
					unknown++
					outcomes[a.why]++
					continue
				}
				nAcked++
				if a.at > killedAt {
					ackedAfter++
					if ledByVictim(key) {
						ackedAfterOnVictims++
					}
				}
			}
		}
	}
	t.Logf("%d writes acknowledged (%d after the kill, %d of them to keys the victim led), %d unknown", nAcked, ackedAfter, ackedAfterOnVictims, unknown)
	for _, o := range slices.Sorted(maps.Keys(outcomes)) {
		t.Logf("  %d× %s", outcomes[o], o)
	}
	if ackedAfterOnVictims == 0 {
		t.Errorf("no write to a key the killed node led was acknowledged after the kill")
	}

	// Every key, read through each survivor.
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range survivors {
		nc := connect(t, s)
		for w := range writers {
			for k, h := range histories[w] {
				key := fmt.Sprintf("w%d.k%d", w, k)
				r, err := getLatest(nc, key, deadline)
				if err != nil {
					t.Fatalf("get %s through %s: %v", key, s.Name(), err)
				}
				if err := h.check(r); err != nil {
					t.Errorf("%s through %s (primary was %s): %v; last writes:%s", key, s.Name(),
						table.Owners[partition.Of(key, table.Partitions)][0], err, h)
				}
			}
		}
		for key, want := range map[string]string{probeKey: "before the crash", replicatedKey: "after the crash"} {
			if r, err := getLatest(nc, key, deadline); err != nil || r.code != 200 || string(r.body) != want {
				t.Errorf("%s through %s = %d %q (%v), want %q", key, s.Name(), r.code, r.body, err, want)
			}
		}
	}
	if t.Failed() {
		return
	}

	// Both survivors hold every partition (R=2 over two servers), and their
	// copies converge.
	converging := time.Now()
	eventually(t, 10*time.Second, func() error {
		a, b := survivors[0].Status().Cluster.Replication, survivors[1].Status().Cluster.Replication
		if len(a) != table.Partitions || len(b) != table.Partitions {
			return fmt.Errorf("%s holds %d partitions, %s %d; want %d each", survivors[0].Name(), len(a), survivors[1].Name(), len(b), table.Partitions)
		}
		for i := range a {
			if a[i].Partition != b[i].Partition || a[i].Digest != b[i].Digest {
				return fmt.Errorf("partition %d: %s has %+v, %s has partition %d %+v", a[i].Partition, survivors[0].Name(), a[i].Digest, survivors[1].Name(), b[i].Partition, b[i].Digest)
			}
		}
		return nil
	})
	t.Logf("the survivors' copies are equal %s after the reads", time.Since(converging).Round(time.Millisecond))
}

// TestR3RejoinCatchesUp: with three copies of everything, a node that was
// killed misses 3000 writes, comes back under the same name, catches up while
// more writes land, and once it says it is in sync it alone serves every key
// at its latest value when the other two are killed.
func TestR3RejoinCatchesUp(t *testing.T) {
	t.Parallel()
	edit := func(_ int, c *node.Config) { c.Replicas = 3 }
	nodes := startCluster(t, 3, edit)
	n1, n2 := nodes[0], nodes[1]
	nodes[2].Kill()
	eventually(t, 5*time.Second, func() error {
		for _, n := range []*node.Node{n1, n2} {
			if s := memberStatus(n, "n3"); s != membership.Dead {
				return fmt.Errorf("%s sees n3 %s", n.Name(), s)
			}
			if s := n.Status().Cluster.Servers; len(s) != 2 {
				return fmt.Errorf("%s routes over %v", n.Name(), s)
			}
		}
		return nil
	})

	const keys = 3000
	latest := make([]string, keys)
	// write sets every key i with want(i) through n1 and n2, with ack=all,
	// four at a time; a 503 is retried until it is acknowledged.
	write := func(what string, which func(i int) bool, value func(i int) string) {
		t.Helper()
		conns := []*nats.Conn{connect(t, n1), connect(t, n2)}
		deadline := time.Now().Add(20 * time.Second)
		errs := make(chan error, 4)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := g; i < keys; i += 4 {
					if !which(i) {
						continue
					}
					for {
						r, err := send(conns[g%2], fmt.Sprintf("roost.set.r%d", i), []byte(value(i)), opTimeout, "Roost-Ack", "all")
						if err == nil && r.code == 200 {
							break
						}
						if (err == nil && r.code != 503) || time.Now().After(deadline) {
							errs <- fmt.Errorf("%s: set r%d: %v %d %s", what, i, err, r.code, r.err)
							return
						}
						time.Sleep(10 * time.Millisecond) // a retry pause
					}
					latest[i] = value(i)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	began := time.Now()
	write("with n3 dead", func(int) bool { return true }, func(i int) string { return fmt.Sprintf("a%d", i) })
	t.Logf("%d keys written with n3 dead in %s", keys, time.Since(began).Round(time.Millisecond))

	// n3 comes back: a new incarnation, same name, joined to n1. Every third
	// key is written again while it joins and syncs.
	rejoined := time.Now()
	n3 := startNode(t, func(c *node.Config) {
		c.Name = "n3"
		c.ClusterListen = "127.0.0.1:-1"
		c.Join = []string{n1.Bus().ClusterAddr()}
		fastBeats(c)
		edit(2, c)
	})
	write("while n3 syncs", func(i int) bool { return i%3 == 0 }, func(i int) string { return fmt.Sprintf("b%d", i) })
	t.Logf("%d keys written again while n3 joined, in %s", keys/3, time.Since(rejoined).Round(time.Millisecond))
	waitMembers(t, []*node.Node{n1, n2, n3}, 3, 5*time.Second)
	partitions := n3.Table().Partitions
	eventually(t, 10*time.Second, func() error {
		st := n3.Status().Cluster.Replication
		if len(st) != partitions {
			return fmt.Errorf("n3 holds %d of %d partitions", len(st), partitions)
		}
		for _, ps := range st {
			if !ps.Ready || ps.Lag != 0 {
				return fmt.Errorf("n3's partition %d: %s, ready %v, lag %d", ps.Partition, ps.Role, ps.Ready, ps.Lag)
			}
		}
		return nil
	})
	t.Logf("n3 in sync on all %d partitions %s after it started again", partitions, time.Since(rejoined).Round(time.Millisecond))

	// Only n3 is left: it has every key at its latest value.
	n1.Kill()
	n2.Kill()
	killed := time.Now()
	nc := connect(t, n3)
	deadline := killed.Add(10 * time.Second)
	lost := 0
	for i := range keys {
		key := fmt.Sprintf("r%d", i)
		r, err := getLatest(nc, key, deadline)
		if err != nil {
			t.Fatalf("n3 alone does not serve %s within 10s of the others' crash: %v", key, err)
		}
		if r.code != 200 || string(r.body) != latest[i] {
			if lost++; lost <= 10 {
				t.Errorf("n3 alone: %s = %d %q, want %q", key, r.code, r.body, latest[i])
			}
		}
	}
	if lost > 0 {
		t.Fatalf("n3 alone lacks the latest value of %d of %d keys", lost, keys)
	}
	t.Logf("n3 alone served all %d keys %s after n1 and n2 were killed", keys, time.Since(killed).Round(time.Millisecond))
}

// linWatch watches a linearizability run from the side, on a connection
// of its own: it learns the run's keys from the requests it sees, and
// counts, per key, the operations that got an answer (200, or 404 for a
// get) while it counts.
type linWatch struct {
	mu       sync.Mutex
	keys     map[string]bool   // the run's keys seen so far
	counting bool              // record requests and answers from now on
	asked    map[string]string // reply subject -> key, of requests seen while counting
	answered map[string]bool   // reply subjects answered with success while counting
}

// watchLin subscribes nc to the text API's requests on the run's keys and
// to every reply subject.
func watchLin(t *testing.T, nc *nats.Conn) *linWatch {
	t.Helper()
	w := &linWatch{keys: map[string]bool{}, asked: map[string]string{}, answered: map[string]bool{}}
	onRequest := func(m *nats.Msg) {
		key := m.Subject[len("roost.get."):] // get and set have the same length
		if _, _, k, ok := wire.NewSubjects("").ParseRouted(m.Subject); ok {
			key = k // as the server routed it to its partition (docs/PROTOCOL.md, "Routing")
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.keys[key] = true
		if w.counting && m.Reply != "" {
			w.asked[m.Reply] = key
		}
	}
	onReply := func(m *nats.Msg) {
		code := m.Header.Get("Nats-Service-Error-Code")
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.counting && (code == "" || code == "404") {
			w.answered[m.Subject] = true
		}
	}
	for subject, handler := range map[string]nats.MsgHandler{
		"roost.get.lin.>": onRequest, "roost.set.lin.>": onRequest, "_INBOX.>": onReply,
		"roost.t.*.get.lin.>": onRequest, "roost.t.*.set.lin.>": onRequest,
	} {
		sub, err := nc.Subscribe(subject, handler)
		if err != nil {
			t.Fatal(err)
		}
		_ = sub.SetPendingLimits(-1, -1)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// seen returns the run's keys seen so far.
func (w *linWatch) seen() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Sorted(maps.Keys(w.keys))
}

// count starts counting answered operations.
func (w *linWatch) count() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counting = true
}

// done returns the operations answered with success since count, by key.
func (w *linWatch) done() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for reply, key := range w.asked {
		if w.answered[reply] {
			out[key]++
		}
	}
	return out
}

// TestLinearizableAcrossPrimaryCrash: clients of random gets and ack=all sets
// over three nodes (R=2) stay linearizable while the node that leads most
// of their keys is killed, and keep completing operations on those keys
// after it.
func TestLinearizableAcrossPrimaryCrash(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, func(_ int, c *node.Config) { c.Replicas = 2 })
	table := nodes[0].Table()
	// The watcher follows the cluster wherever its node goes.
	watch := watchLin(t, connect(t, nodes[0], nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond)))
	const keys = 4
	var victim *node.Node
	var victimKeys []string
	// A request caught by the crash goes unanswered until its OpTimeout: 1s
	// leaves each client 2s of the 3s after the crash to go on.
	opts := linOptions{Clients: 8, Keys: keys, Duration: 6 * time.Second, OpTimeout: time.Second}
	stats := runLinearizable(t, nodes, opts, func() {
		// Kill the primary of most of the run's keys.
		eventually(t, 2*time.Second, func() error {
			if n := len(watch.seen()); n < keys {
				return fmt.Errorf("seen %d of the run's %d keys", n, keys)
			}
			return nil
		})
		led := map[string][]string{}
		for _, key := range watch.seen() {
			primary := table.Owners[partition.Of(key, table.Partitions)][0]
			led[primary] = append(led[primary], key)
		}
		for _, n := range nodes {
			if len(led[n.Name()]) > len(victimKeys) {
				victim, victimKeys = n, led[n.Name()]
			}
		}
		t.Logf("killing %s, the primary of %d of the %d keys", victim.Name(), len(victimKeys), keys)
		watch.count()
		victim.Kill()
	})
	done := watch.done()
	onVictims := 0
	for _, key := range victimKeys {
		onVictims += done[key]
	}
	total := 0
	for _, n := range done {
		total += n
	}
	t.Logf("after the crash: %d operations answered, %d of them on the %d keys %s led", total, onVictims, len(victimKeys), victim.Name())
	if stats.Completed() < 200 {
		t.Fatalf("only %d operations completed: too few for the check to mean anything", stats.Completed())
	}
	if onVictims < 50 {
		t.Fatalf("after the crash only %d operations on the keys %s led were answered: its partitions were not taken over", onVictims, victim.Name())
	}
}
