package client

import (
	"slices"
	"testing"

	"github.com/roostkv/roost/bus"
)

func testCall(key, ack string, size int, done chan struct{}) *call {
	return &call{req: bus.Request{Key: key}, ack: ack, size: size, done: done}
}

func keysOf(calls []*call) []string {
	var keys []string
	for _, c := range calls {
		keys = append(keys, c.req.Key)
	}
	return keys
}

func TestQueueNext(t *testing.T) {
	gone := make(chan struct{})
	close(gone)
	for _, tc := range []struct {
		name     string
		calls    []*call
		maxOps   int
		maxBytes int
		wantAck  string
		want     []string // keys of the batch
		wantLeft []string // keys still waiting
	}{
		{"empty", nil, 4, 100, "", nil, nil},
		{"all fit", []*call{testCall("a", "", 1, nil), testCall("b", "", 1, nil)}, 4, 100, "", []string{"a", "b"}, nil},
		{"max ops", []*call{testCall("a", "", 1, nil), testCall("b", "", 1, nil), testCall("c", "", 1, nil)}, 2, 100, "", []string{"a", "b"}, []string{"c"}},
		{"oldest ack first, others keep their place",
			[]*call{testCall("a", "all", 1, nil), testCall("b", "", 1, nil), testCall("c", "all", 1, nil), testCall("d", "", 1, nil)},
			4, 100, "all", []string{"a", "c"}, []string{"b", "d"}},
		{"bytes", []*call{testCall("a", "", 40, nil), testCall("b", "", 40, nil), testCall("c", "", 30, nil), testCall("d", "", 10, nil)},
			4, 100, "", []string{"a", "b", "d"}, []string{"c"}},
		{"oversized goes alone", []*call{testCall("a", "", 500, nil), testCall("b", "", 1, nil)}, 4, 100, "", []string{"a"}, []string{"b"}},
		{"abandoned dropped", []*call{testCall("a", "all", 1, gone), testCall("b", "", 1, nil), testCall("c", "all", 1, gone)},
			4, 100, "", []string{"b"}, nil},
		{"all abandoned", []*call{testCall("a", "", 1, gone)}, 4, 100, "", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q queue
			for _, c := range tc.calls {
				q.push(c)
			}
			ack, batch := q.next(tc.maxOps, tc.maxBytes)
			if ack != tc.wantAck || !slices.Equal(keysOf(batch), tc.want) {
				t.Errorf("next = %q %v, want %q %v", ack, keysOf(batch), tc.wantAck, tc.want)
			}
			if left := keysOf(q.takeAll()); !slices.Equal(left, tc.wantLeft) {
				t.Errorf("left %v, want %v", left, tc.wantLeft)
			}
		})
	}
}

func TestChunk(t *testing.T) {
	ops := func(sizes ...int) []bus.Request {
		var r []bus.Request
		for _, s := range sizes {
			r = append(r, bus.Request{Value: make([]byte, s)})
		}
		return r
	}
	o := opSize(&bus.Request{}) // per-op overhead
	for _, tc := range []struct {
		name     string
		ops      []bus.Request
		acks     []string
		maxOps   int
		maxBytes int
		want     []span
	}{
		{"one", ops(0), nil, 2, 1000, []span{{0, 1}}},
		{"by count", ops(0, 0, 0, 0, 0), nil, 2, 1000, []span{{0, 2}, {2, 4}, {4, 5}}},
		{"by bytes", ops(50, 50, 50), nil, 10, 100 + 2*o, []span{{0, 2}, {2, 3}}},
		{"oversized alone", ops(10, 500, 10), nil, 10, 100, []span{{0, 1}, {1, 2}, {2, 3}}},
		{"by ack", ops(0, 0, 0, 0), []string{"all", "all", "", "all"}, 10, 1000, []span{{0, 2}, {2, 3}, {3, 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := chunk(tc.ops, tc.acks, tc.maxOps, tc.maxBytes); !slices.Equal(got, tc.want) {
				t.Errorf("chunk = %v, want %v", got, tc.want)
			}
		})
	}
}
