package replicator

import (
	"bytes"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/internal/testkit"
	"github.com/roostkv/roost/partition"
)

// wireCount counts the messages on the replication subjects.
type wireCount struct {
	mu     sync.Mutex
	counts map[string]int // "log" (envelopes), "plog" (partition log subjects), "ack"
}

func countWire(t *testing.T, url string) *wireCount {
	w := &wireCount{counts: map[string]int{}}
	nc := testkit.Connect(t, url)
	_, err := nc.Subscribe("roost.>", func(m *nats.Msg) {
		kind := ""
		switch {
		case strings.HasPrefix(m.Subject, "roost.p.") && strings.HasSuffix(m.Subject, ".log"):
			kind = "plog"
		case strings.HasPrefix(m.Subject, "roost.n.") && strings.HasSuffix(m.Subject, ".log"):
			kind = "log"
		case strings.HasPrefix(m.Subject, "roost.n.") && strings.HasSuffix(m.Subject, ".ack"):
			kind = "ack"
		default:
			return
		}
		w.mu.Lock()
		w.counts[kind]++
		w.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// take returns the counts so far; reset starts them again.
func (w *wireCount) take(reset bool) map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := maps.Clone(w.counts)
	if reset {
		clear(w.counts)
	}
	return out
}

// A batch of ack=all writes over every partition a node leads travels to
// each replica node as one message, and each replica acknowledges it with
// one message: as many messages as replica nodes, not as partitions.
func TestShellBatchIsOneMessagePerReplica(t *testing.T) {
	c, tab := envelopeCluster(t)
	a := c.nodes["a"]
	var led []int
	replicas := map[string]bool{}
	for p := range shellPartitions {
		if o := tab.Owners(p); o[0] == "a" {
			led = append(led, p)
			replicas[o[1]] = true
		}
	}
	if len(led) < 2 {
		t.Fatalf("a leads %d partitions: the test needs two", len(led))
	}
	// Every node must have heard that its peers take envelopes.
	testkit.Eventually(t, 5*time.Second, func() error {
		for _, n := range c.nodes {
			env := n.r.peerEnv.Load()
			if env == nil || len(*env) != 2 {
				return fmt.Errorf("%s knows of no envelopes yet", n.name)
			}
			for peer, ok := range *env {
				if !ok {
					return fmt.Errorf("%s: %s takes no envelopes", n.name, peer)
				}
			}
		}
		return nil
	})
	wc := countWire(t, c.url)
	for round := range 3 {
		wc.take(true)
		var waits []Pending
		want := map[string]uint64{}
		for _, p := range led {
			key, key2 := keyIn(p, fmt.Sprintf("k%d", round)), keyIn(p, fmt.Sprintf("x%d", round))
			res := make([]OpResult, 2)
			pw, err := a.r.Submit(p, AckAll, []Op{{Set: &store.SetRequest{Key: key, Value: []byte("v")}}, {Set: &store.SetRequest{Key: key2, Value: []byte("w")}}}, res)
			if err != nil {
				t.Fatal(err)
			}
			waits = append(waits, pw)
			want[key] = res[0].Entry.Version
		}
		for _, pw := range waits {
			if err := pw.Wait(); err != nil {
				t.Fatal(err)
			}
		}
		for key, v := range want {
			r := c.nodes[tab.Owners(partition.Of(key, shellPartitions))[1]]
			if e, err := r.st.Get(key); err != nil || e.Version != v {
				t.Fatalf("%s acknowledged before its replica %s applied it: %v %v", key, r.name, e, err)
			}
		}
		// The acks came before the counter saw them (it subscribed on
		// another connection): wait until the counts stop moving.
		var got map[string]int
		testkit.Eventually(t, 2*time.Second, func() error {
			got = wc.take(false)
			if got["log"] == len(replicas) && got["ack"] == len(replicas) && got["plog"] == 0 {
				return nil
			}
			return fmt.Errorf("round %d: %d partitions' batches to %d replica nodes made %d envelopes, %d log subject messages and %d acks, want %d, 0 and %d",
				round, len(led), len(replicas), got["log"], got["plog"], got["ack"], len(replicas), len(replicas))
		})
	}
}

// An envelope reads back as the batches put in, and a damaged one is
// refused.
func TestEnvelopeFrames(t *testing.T) {
	var env []byte
	in := [][]byte{[]byte("first batch"), {}, bytes.Repeat([]byte{7}, 300)}
	for i, b := range in {
		env = appendFrame(env, i%2 == 0, b)
	}
	var got [][]byte
	var acks []bool
	if err := readEnvelope(env, func(ack bool, b []byte) { got, acks = append(got, b), append(acks, ack) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("%d frames, want %d", len(got), len(in))
	}
	for i := range in {
		if !bytes.Equal(got[i], in[i]) || acks[i] != (i%2 == 0) {
			t.Fatalf("frame %d: %q ack=%v", i, got[i], acks[i])
		}
	}
	for _, bad := range [][]byte{nil, {2, 0, 1, 'x'}, {envelopeV1, 0, 5, 'x'}, {envelopeV1, 0, 0x80}} {
		if err := readEnvelope(bad, func(bool, []byte) {}); err == nil {
			t.Errorf("%v read without an error", bad)
		}
	}
}

// TestEnvelopeFramesKeepTheirOwnFields sends, in one envelope to one
// replica, a partition's batch of a delete and a set with a TTL and flags,
// then another partition's batch of a plain set and an empty value: each
// entry must arrive as written. The frames of an envelope are decoded one
// after the other, and the encoding leaves out zero fields, so an entry
// decoded over the previous frame's would keep its "deleted", expiry, flags
// or value.
func TestEnvelopeFramesKeepTheirOwnFields(t *testing.T) {
	c, tab := envelopeCluster(t)
	a := c.nodes["a"]
	// Two partitions a leads with the same replica: one envelope.
	var p1, p2 = -1, -1
	var replica string
	for p := range shellPartitions {
		o := tab.Owners(p)
		switch {
		case o[0] != "a":
		case p1 < 0:
			p1, replica = p, o[1]
		case o[1] == replica && p2 < 0:
			p2 = p
		}
	}
	if p2 < 0 {
		t.Fatalf("a leads no two partitions with one replica")
	}
	testkit.Eventually(t, 5*time.Second, func() error {
		if env := a.r.peerEnv.Load(); env == nil || len(*env) != 2 {
			return fmt.Errorf("a knows of no envelopes yet")
		}
		return nil
	})
	gone, ttl, plain, empty := keyIn(p1, "gone"), keyIn(p1, "ttl"), keyIn(p2, "plain"), keyIn(p2, "empty")
	// gone exists first, so that its delete is logged.
	if _, err := a.r.Submit(p1, AckAll, []Op{{Set: &store.SetRequest{Key: gone, Value: []byte("old value, long")}}}, make([]OpResult, 1)); err != nil {
		t.Fatal(err)
	}
	a.r.Flush()
	var waits []Pending
	for _, w := range []struct {
		p   int
		ops []Op
	}{
		{p1, []Op{{Del: &store.DeleteRequest{Key: gone}}, {Set: &store.SetRequest{Key: ttl, Value: []byte("a value with a TTL"), Flags: 7, TTL: time.Hour}}}},
		{p2, []Op{{Set: &store.SetRequest{Key: plain, Value: []byte("plain")}}, {Set: &store.SetRequest{Key: empty, Value: []byte{}}}}},
	} {
		pw, err := a.r.Submit(w.p, AckAll, w.ops, make([]OpResult, len(w.ops)))
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, pw)
	}
	for _, pw := range waits {
		if err := pw.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	r := c.nodes[replica].st
	if e, err := r.Get(plain); err != nil || string(e.Value) != "plain" || e.Expires != 0 || e.Flags != 0 {
		t.Errorf("%s on the replica: %+v, %v; want the plain value, no expiry, no flags", plain, e, err)
	}
	if e, err := r.Get(empty); err != nil || len(e.Value) != 0 || e.Expires != 0 || e.Flags != 0 {
		t.Errorf("%s on the replica: %+v, %v; want an empty value, no expiry, no flags", empty, e, err)
	}
	if e, err := r.Get(ttl); err != nil || e.Flags != 7 || e.Expires == 0 {
		t.Errorf("%s on the replica: %+v, %v; want flags 7 and an expiry", ttl, e, err)
	}
	if _, err := r.Get(gone); err == nil {
		t.Errorf("%s still on the replica after its delete", gone)
	}
}

// envelopeCluster starts three shell nodes a, b and c, serving and safe.
func envelopeCluster(t *testing.T) (*shellCluster, *partition.Table) {
	c := newShellCluster(t)
	for _, name := range []string{"a", "b", "c"} {
		c.add(name)
	}
	tab := c.table()
	c.serving(tab)
	for _, name := range []string{"a", "b", "c"} {
		c.safe(name)
	}
	return c, tab
}

// keyIn returns the first key prefix-<n> of partition p.
func keyIn(p int, prefix string) string {
	for j := 0; ; j++ {
		if k := fmt.Sprintf("%s-%d", prefix, j); partition.Of(k, shellPartitions) == p {
			return k
		}
	}
}
