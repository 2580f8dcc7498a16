package replicator

import (
	"testing"
)

func entry(seq uint64, value string) Entry {
	return Entry{Seq: seq, Key: "k", Value: []byte(value)}
}

// The log keeps the last entries within both limits, and says when a fetch
// reaches further back than it holds.
func TestRingKeepsTheTailWithinItsLimits(t *testing.T) {
	g := newRing(4, 1<<20)
	for s := uint64(1); s <= 10; s++ {
		g.add(entry(s, "v"))
	}
	if got, ok := g.slice(7, 10); !ok || len(got) != 4 || got[0].Seq != 7 || got[3].Seq != 10 {
		t.Fatalf("slice(7, 10) = %v, %v; want seqs 7..10", got, ok)
	}
	if _, ok := g.slice(6, 10); ok {
		t.Fatal("slice(6, 10) succeeded with 6 no longer held")
	}
	if got, ok := g.slice(9, 100); !ok || len(got) != 2 {
		t.Fatalf("slice(9, 100) = %v, %v; want seqs 9 and 10", got, ok)
	}

	// Bytes: entries of 1+10 bytes in a 40-byte log: three fit.
	g = newRing(100, 40)
	for s := uint64(1); s <= 5; s++ {
		g.add(entry(s, "0123456789"))
	}
	if got, ok := g.slice(3, 5); !ok || len(got) != 3 {
		t.Fatalf("slice(3, 5) = %v, %v; want three entries", got, ok)
	}
	if _, ok := g.slice(2, 5); ok {
		t.Fatal("the log holds more bytes than its limit")
	}
	if g.bytes != 33 {
		t.Fatalf("bytes = %d, want 33", g.bytes)
	}
	g.reset()
	if _, ok := g.slice(1, 1); ok || g.bytes != 0 {
		t.Fatal("reset log still answers")
	}
}

// An ack=all write is released once every replica acknowledged its seq, and
// not before; a replica that leaves the owners is waited for no more.
func TestWaitersReleaseOnEveryReplicasAck(t *testing.T) {
	pt := newPart(0, 8, 1<<20)
	pt.role, pt.replicas = rolePrimary, []string{"b", "c"}
	w := &waiter{seq: 5, done: make(chan error, 1)}
	pt.waiters = append(pt.waiters, w)

	pt.acked["b"] = 5
	pt.release()
	select {
	case <-w.done:
		t.Fatal("released with c behind")
	default:
	}
	pt.acked["c"] = 4
	pt.release()
	if len(pt.waiters) != 1 {
		t.Fatal("released with c at 4 < 5")
	}
	pt.replicas = []string{"b"} // c is no owner any more
	pt.release()
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("released with %v", err)
		}
	default:
		t.Fatal("not released once every remaining replica acknowledged")
	}
	if len(pt.waiters) != 0 {
		t.Fatalf("%d waiters left", len(pt.waiters))
	}
}

// Leaving a role fails the waiting writes and readies nothing.
func TestLeaveFailsWaiters(t *testing.T) {
	pt := newPart(0, 8, 1<<20)
	pt.role = rolePrimary
	pt.setReady(true)
	if !pt.serving.Load() {
		t.Fatal("a ready primary is not serving")
	}
	w := &waiter{seq: 1, done: make(chan error, 1)}
	pt.waiters = append(pt.waiters, w)
	pt.leave(ErrNotPrimary)
	if err := <-w.done; err != ErrNotPrimary {
		t.Fatalf("waiter got %v", err)
	}
	if pt.serving.Load() || pt.ready || pt.role != roleNone {
		t.Fatalf("after leave: serving %v ready %v role %v", pt.serving.Load(), pt.ready, pt.role)
	}
}

// Digests are equal for equal contents whatever the order, and tell a
// different version or a delete apart.
func TestRecordHash(t *testing.T) {
	a := recordHash("k1", 7, false) ^ recordHash("k2", 9, false)
	b := recordHash("k2", 9, false) ^ recordHash("k1", 7, false)
	if a != b {
		t.Fatal("order changes the digest")
	}
	if recordHash("k1", 7, false) == recordHash("k1", 8, false) {
		t.Fatal("versions 7 and 8 hash alike")
	}
	if recordHash("k1", 7, false) == recordHash("k1", 7, true) {
		t.Fatal("a delete hashes like a set")
	}
}
