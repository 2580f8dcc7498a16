package node

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/partition"
	"github.com/vmihailenco/msgpack/v5"
)

func TestSequencedChangesDecodeEverywhere(t *testing.T) {
	entries := []replicator.Entry{
		{Key: "a", Version: 7, Term: 1<<40 | 3, Seq: 1},
		{Key: string(bytes.Repeat([]byte("k"), 300)), Version: 1 << 63, Term: 5, Seq: 1 << 50, Deleted: true},
	}
	var stream []byte
	for i := range entries {
		stream = appendSeqChange(stream, 270, &entries[i])
	}
	stream = appendChange(stream, storeChange("old", 9)) // an unsequenced change may follow
	got, err := DecodeChanges(stream)
	if err != nil || len(got) != 3 {
		t.Fatalf("DecodeChanges = %+v, %v", got, err)
	}
	for i, e := range entries {
		want := Change{Key: e.Key, Version: e.Version, Deleted: e.Deleted, Partition: 270, Term: e.Term, Seq: e.Seq}
		if got[i] != want {
			t.Fatalf("change %d = %+v, want %+v", i, got[i], want)
		}
	}
	if got[2] != (Change{Key: "old", Version: 9}) {
		t.Fatalf("unsequenced change = %+v", got[2])
	}
	// The in-place reader takes the sequenced layout...
	var rc rawChange
	if rest, ok := scanChange(stream, &rc); !ok || rc.seq != 1 || rc.p != 270 || rc.term != entries[0].Term || string(rc.key) != "a" || len(rest) == 0 {
		t.Fatalf("scanChange = %+v, %v", rc, ok)
	}
	// ... as do wire's decoder (the Go client's) and a reader that knows
	// only the three fields of the first version of the feed.
	var viaWire []wire.FeedChange
	if err := wire.EachFeedChange(stream, func(c wire.FeedChange) { viaWire = append(viaWire, c) }); err != nil || len(viaWire) != 3 || viaWire[1].Seq != 1<<50 || viaWire[1].P != 270 || !viaWire[1].Deleted {
		t.Fatalf("wire.EachFeedChange = %+v, %v", viaWire, err)
	}
	type oldChange struct {
		Key     string `msgpack:"k"`
		Version uint64 `msgpack:"ver"`
		Deleted bool   `msgpack:"del"`
	}
	dec := msgpack.NewDecoder(bytes.NewReader(stream))
	for i := range 3 {
		var c oldChange
		if err := dec.Decode(&c); err != nil || c.Key != got[i].Key || c.Version != got[i].Version {
			t.Fatalf("an old reader decoded change %d as %+v, %v", i, c, err)
		}
	}
}

// TestTheFeedSequencesAndBeacons writes through a node and reads its feed
// and beacon on one subscriber connection, in arrival order: every change
// carries its partition's (term, seq), consecutive within a (partition,
// term), and the beacon names the last seq of each partition written.
func TestTheFeedSequencesAndBeacons(t *testing.T) {
	n := startTestNode(t, 0)
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ch := make(chan *nats.Msg, 1024)
	for _, subj := range []string{n.subj.Changes(), n.subj.ChangeHeads()} {
		if _, err := nc.ChanSubscribe(subj, ch); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	const writes = 200
	for i := range writes {
		key := "k" + strconv.Itoa(i%20)
		if resp, err := nc.Request("roost.set."+key, []byte("v"), 5*time.Second); err != nil || resp.Header.Get("Nats-Service-Error-Code") != "" {
			t.Fatalf("set %s: %v", key, err)
		}
	}
	type head struct{ term, seq uint64 }
	last := map[int]head{} // per partition, from the changes
	changes := 0
	deadline := time.After(5 * time.Second)
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-deadline:
			t.Fatalf("no beacon covering the %d changes (%d read)", writes, changes)
		}
		if m.Subject == n.subj.ChangeHeads() {
			var hb wire.FeedHeads
			if err := msgpack.Unmarshal(m.Data, &hb); err != nil || hb.Node != "t" || hb.Every != wire.FeedHeadsEvery || len(hb.Heads)%3 != 0 {
				t.Fatalf("beacon %+v, %v", hb, err)
			}
			if changes < writes {
				continue // a beacon from before the writes ended
			}
			seen := map[int]bool{}
			for i := 0; i < len(hb.Heads); i += 3 {
				p, term, seq := int(hb.Heads[i]), hb.Heads[i+1], hb.Heads[i+2]
				seen[p] = true
				if h, ok := last[p]; ok && (h.term != term || h.seq != seq) {
					t.Fatalf("beacon says partition %d is at (%d, %d); its last change was (%d, %d)", p, term, seq, h.term, h.seq)
				}
			}
			if len(seen) != n.cfg.Partitions {
				t.Fatalf("beacon names %d partitions; the node alone leads %d", len(seen), n.cfg.Partitions)
			}
			return
		}
		cs, err := DecodeChanges(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			changes++
			if p := partition.Of(c.Key, n.cfg.Partitions); c.Partition != p {
				t.Fatalf("%q announced in partition %d, it is in %d", c.Key, c.Partition, p)
			}
			h, ok := last[c.Partition]
			if !ok && c.Seq != 1 || ok && (c.Term != h.term || c.Seq != h.seq+1) {
				t.Fatalf("partition %d: change (%d, %d) after (%d, %d)", c.Partition, c.Term, c.Seq, h.term, h.seq)
			}
			last[c.Partition] = head{c.Term, c.Seq}
		}
	}
}

func storeChange(key string, version uint64) store.Change {
	return store.Change{Key: key, Version: version}
}
