package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
)

// testTable is a table of P partitions over names, partition p led by
// names[p % len(names)]; ids maps names to node IDs.
func testTable(p int, names []string, ids map[string]string) *tableReply {
	tr := &tableReply{Partitions: p, Owners: make([][]string, p), IDs: ids}
	for i := range tr.Owners {
		if len(names) > 0 {
			tr.Owners[i] = []string{names[i%len(names)]}
		}
	}
	return tr
}

// keyIn returns a key of partition p (of P).
func keyIn(p, P int) string {
	for i := 0; ; i++ {
		if k := fmt.Sprint("k", i); partition.Of(k, P) == p {
			return k
		}
	}
}

func TestNewRoutes(t *testing.T) {
	subj := wire.NewSubjects("")
	ids := map[string]string{"a": "IDA", "b": "IDB"} // "c" has no ID: unknown
	rt, err := newRoutes(subj, testTable(7, []string{"a", "b", "c"}, ids))
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range []string{"roost.n.IDA.batch", "roost.n.IDB.batch", "roost.bin.batch", "roost.n.IDA.batch"} {
		if got := rt.destOf(keyIn(p, 7)); got != want {
			t.Errorf("partition %d goes to %q, want %q", p, got, want)
		}
	}
	empty, err := newRoutes(subj, testTable(7, nil, nil))
	if err != nil || empty.destOf("x") != "roost.bin.batch" {
		t.Errorf("a table with no members: %v, %v", empty, err)
	}
	single, err := newRoutes(subj, testTable(7, []string{"a"}, map[string]string{"a": "IDA"}))
	if err != nil || single.destOf("x") != "roost.bin.batch" {
		t.Errorf("a single node is not routed to by the generic subject: %v, %v", single, err)
	}
	none := &routes{generic: "roost.bin.batch"}
	if d := none.destOf("x"); d != "roost.bin.batch" {
		t.Errorf("no table routes to %q", d)
	}
	for _, bad := range []*tableReply{{Partitions: 0}, {Partitions: 3, Owners: make([][]string, 2)}} {
		if _, err := newRoutes(subj, bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("newRoutes(%+v) = %v, want ErrProtocol", bad, err)
		}
	}
}

func TestRouterNodeGone(t *testing.T) {
	subj := wire.NewSubjects("")
	tr := testTable(6, []string{"a", "b"}, map[string]string{"a": "IDA", "b": "IDB"})
	fetches := 0
	r := newRouter(subj, time.Second, time.Second, func(context.Context) ([]byte, error) {
		fetches++
		return json.Marshal(tr)
	})
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }
	if d := r.destOf(keyIn(1, 6)); d != subj.Batch() {
		t.Fatalf("before any table: %q", d)
	}
	if err := r.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	kB := keyIn(1, 6)
	if d := r.destOf(kB); d != subj.NodeBatch("IDB") {
		t.Fatalf("after the table: %q", d)
	}

	r.nodeGone(subj.NodeBatch("IDB"))
	if d := r.destOf(kB); d != subj.Batch() {
		t.Fatalf("a gone node is still routed to: %q", d)
	}
	if d := r.destOf(keyIn(0, 6)); d != subj.NodeBatch("IDA") {
		t.Fatalf("the other node lost its routes: %q", d)
	}
	select {
	case <-r.kick:
	default:
		t.Fatal("nodeGone did not ask for a fresh table")
	}

	// A table fetched within the hold still listing it does not bring it back...
	now = now.Add(500 * time.Millisecond)
	if err := r.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := r.destOf(kB); d != subj.Batch() {
		t.Fatalf("routed to a gone node within the hold: %q", d)
	}
	// ...one after it does: the node gets another chance.
	now = now.Add(time.Second)
	if err := r.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := r.destOf(kB); d != subj.NodeBatch("IDB") {
		t.Fatalf("after the hold: %q", d)
	}
	// A table without the node routes its partitions elsewhere.
	tr = testTable(6, []string{"a"}, map[string]string{"a": "IDA", "p": "IDP"}) // p: a proxy
	if err := r.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := r.destOf(kB); d != subj.NodeBatch("IDA") {
		t.Fatalf("after b left: %q", d)
	}
	if fetches != 4 {
		t.Fatalf("%d fetches, want 4", fetches)
	}
	// A failed or garbled fetch keeps the routes.
	r.fetch = func(context.Context) ([]byte, error) { return []byte("{"), nil }
	if err := r.refresh(context.Background()); !errors.Is(err, ErrProtocol) || r.destOf(kB) != subj.NodeBatch("IDA") {
		t.Fatalf("garbled table: %v, routes to %q", err, r.destOf(kB))
	}
}
