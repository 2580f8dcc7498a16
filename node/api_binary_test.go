package node

import (
	"reflect"
	"testing"
	"time"

	"github.com/roostkv/roost/bus/wire"
)

// TestReleasedBatchRequestDecodesClean checks that a pooled BatchRequest
// carries nothing over from the batch decoded into it before: wire's
// decoder leaves absent fields as they are, so a set without a CAS would
// otherwise inherit the previous batch's CAS, TTL or flags, and a batch
// without an ack its ack mode.
func TestReleasedBatchRequestDecodesClean(t *testing.T) {
	cas := uint64(0)
	first := wire.BatchRequest{Ack: wire.AckAll, Ops: []wire.Request{
		{Op: wire.OpSet, Key: "a", Value: []byte("one"), TTL: 60_000, Flags: 7, CAS: &cas},
		{Op: wire.OpSet, Key: "b", Value: []byte("two"), TTL: 1000},
	}}
	second := wire.BatchRequest{Ops: []wire.Request{
		{Op: wire.OpSet, Key: "a", Value: []byte("three")},
		{Op: wire.OpGet, Key: "b"},
	}}
	encode := func(br wire.BatchRequest) []byte {
		data, err := wire.Marshal(&br)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	var want wire.BatchRequest
	if err := wire.Unmarshal(encode(second), &want); err != nil {
		t.Fatal(err)
	}
	br := new(wire.BatchRequest)
	if err := wire.Unmarshal(encode(first), br); err != nil {
		t.Fatal(err)
	}
	releaseBatchRequest(br)
	if err := wire.Unmarshal(encode(second), br); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*br, want) {
		t.Fatalf("reused request decoded as %+v, want %+v", *br, want)
	}
}

// TestDoneBatch checks that a batch's gets count one by one, by result,
// in the counters and in the latency histogram.
func TestDoneBatch(t *testing.T) {
	m := newMetrics(&Node{})
	m.doneBatch(opGet, time.Now().Add(-3*time.Microsecond), []wire.Result{
		{Code: wire.CodeOK}, {Code: wire.CodeNotFound}, {Code: wire.CodeOK}, {Code: wire.CodeBadRequest},
	})
	if ok, missing, bad := m.ops[opGet][resOK].Load(), m.ops[opGet][resNotFound].Load(), m.ops[opGet][resBadRequest].Load(); ok != 2 || missing != 1 || bad != 1 {
		t.Errorf("counted %d ok, %d not found, %d bad requests; want 2, 1, 1", ok, missing, bad)
	}
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var observed uint64
	for _, f := range families {
		if f.GetName() != "roost_operation_duration_seconds" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == "get" {
					observed = metric.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	if observed != 4 {
		t.Errorf("latency histogram of gets has %d observations, want 4", observed)
	}
}
