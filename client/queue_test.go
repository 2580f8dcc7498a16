package client

import (
	"slices"
	"testing"

	"github.com/roostkv/roost/bus"
)

func testCall(key, ack string, size int, done chan struct{}) *call {
	return &call{req: bus.Request{Key: key}, ack: ack, size: size, done: done}
}

// to sets the call's destination.
func (c *call) to(dest string) *call {
	c.dest = dest
	return c
}

func keysOf(calls []*call) []string {
	var keys []string
	for _, c := range calls {
		keys = append(keys, c.req.Key)
	}
	return keys
}

func allFree(string) bool { return true }

func TestQueueNext(t *testing.T) {
	gone := make(chan struct{})
	close(gone)
	for _, tc := range []struct {
		name     string
		calls    []*call
		maxOps   int
		maxBytes int
		busy     []string // destinations with no free slot
		wantDest string
		wantAck  string
		want     []string // keys of the batch
		wantLeft []string // keys still waiting
	}{
		{"empty", nil, 4, 100, nil, "", "", nil, nil},
		{"all fit", []*call{testCall("a", "", 1, nil), testCall("b", "", 1, nil)}, 4, 100, nil, "", "", []string{"a", "b"}, nil},
		{"max ops", []*call{testCall("a", "", 1, nil), testCall("b", "", 1, nil), testCall("c", "", 1, nil)}, 2, 100, nil, "", "", []string{"a", "b"}, []string{"c"}},
		{"oldest ack first, others keep their place",
			[]*call{testCall("a", "all", 1, nil), testCall("b", "", 1, nil), testCall("c", "all", 1, nil), testCall("d", "", 1, nil)},
			4, 100, nil, "", "all", []string{"a", "c"}, []string{"b", "d"}},
		{"bytes", []*call{testCall("a", "", 40, nil), testCall("b", "", 40, nil), testCall("c", "", 30, nil), testCall("d", "", 10, nil)},
			4, 100, nil, "", "", []string{"a", "b", "d"}, []string{"c"}},
		{"oversized goes alone", []*call{testCall("a", "", 500, nil), testCall("b", "", 1, nil)}, 4, 100, nil, "", "", []string{"a"}, []string{"b"}},
		{"abandoned dropped", []*call{testCall("a", "all", 1, gone), testCall("b", "", 1, nil), testCall("c", "all", 1, gone)},
			4, 100, nil, "", "", []string{"b"}, nil},
		{"all abandoned", []*call{testCall("a", "", 1, gone)}, 4, 100, nil, "", "", nil, nil},
		{"oldest destination first, others keep their place",
			[]*call{testCall("a", "", 1, nil).to("n1"), testCall("b", "", 1, nil).to("n2"), testCall("c", "", 1, nil).to("n1"), testCall("d", "", 1, nil).to("n3")},
			4, 100, nil, "n1", "", []string{"a", "c"}, []string{"b", "d"}},
		{"destination and ack",
			[]*call{testCall("a", "all", 1, nil).to("n1"), testCall("b", "", 1, nil).to("n1"), testCall("c", "all", 1, nil).to("n2"), testCall("d", "all", 1, nil).to("n1")},
			4, 100, nil, "n1", "all", []string{"a", "d"}, []string{"b", "c"}},
		{"busy destination skipped",
			[]*call{testCall("a", "", 1, nil).to("n1"), testCall("b", "", 1, nil).to("n2"), testCall("c", "", 1, nil).to("n1"), testCall("d", "", 1, nil).to("n2")},
			4, 100, []string{"n1"}, "n2", "", []string{"b", "d"}, []string{"a", "c"}},
		{"every destination busy",
			[]*call{testCall("a", "", 1, nil).to("n1"), testCall("b", "", 1, nil).to("n2")},
			4, 100, []string{"n1", "n2"}, "", "", nil, []string{"a", "b"}},
		{"abandoned dropped even when busy",
			[]*call{testCall("a", "", 1, gone).to("n1"), testCall("b", "", 1, nil).to("n1")},
			4, 100, []string{"n1"}, "", "", nil, []string{"b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q queue
			for _, c := range tc.calls {
				q.push(c)
			}
			free := func(d string) bool { return !slices.Contains(tc.busy, d) }
			dest, ack, batch := q.next(tc.maxOps, tc.maxBytes, free)
			if dest != tc.wantDest || ack != tc.wantAck || !slices.Equal(keysOf(batch), tc.want) {
				t.Errorf("next = %q %q %v, want %q %q %v", dest, ack, keysOf(batch), tc.wantDest, tc.wantAck, tc.want)
			}
			if left := keysOf(q.takeAll()); !slices.Equal(left, tc.wantLeft) {
				t.Errorf("left %v, want %v", left, tc.wantLeft)
			}
		})
	}
}

// TestQueueOneBatchPerDestination: calls for three primaries, interleaved,
// leave as one message per primary, each in the callers' order.
func TestQueueOneBatchPerDestination(t *testing.T) {
	var q queue
	dests := []string{"n1", "n2", "n3"}
	for i := range 30 {
		q.push(testCall(string(rune('a'+i%26))+dests[i%3], "", 1, nil).to(dests[i%3]))
	}
	busy := map[string]bool{}
	for _, want := range dests {
		dest, _, batch := q.next(100, 1000, func(d string) bool { return !busy[d] })
		if dest != want || len(batch) != 10 {
			t.Fatalf("next = %q with %d calls, want %q with 10", dest, len(batch), want)
		}
		for j, c := range batch {
			if c.dest != want || c.req.Key != string(rune('a'+(3*j+len(busy))%26))+want {
				t.Fatalf("batch for %s holds %q (%s) at %d", want, c.req.Key, c.dest, j)
			}
		}
		busy[dest] = true
	}
	if q.len() != 0 {
		t.Fatalf("%d calls left", q.len())
	}
}

func TestPlan(t *testing.T) {
	ops := func(sizes ...int) []bus.Request {
		var r []bus.Request
		for _, s := range sizes {
			r = append(r, bus.Request{Value: make([]byte, s)})
		}
		return r
	}
	same := func(n int) []string { return slices.Repeat([]string{"g"}, n) }
	o := opSize(&bus.Request{}) // per-op overhead
	type msg struct {
		dest string
		idx  []int
	}
	for _, tc := range []struct {
		name     string
		ops      []bus.Request
		acks     []string
		dests    []string
		maxOps   int
		maxBytes int
		want     [][]msg
	}{
		{"one", ops(0), nil, same(1), 2, 1000, [][]msg{{{"g", []int{0}}}}},
		{"by count", ops(0, 0, 0, 0, 0), nil, same(5), 2, 1000, [][]msg{{{"g", []int{0, 1}}, {"g", []int{2, 3}}, {"g", []int{4}}}}},
		{"by bytes", ops(50, 50, 50), nil, same(3), 10, 100 + 2*o, [][]msg{{{"g", []int{0, 1}}, {"g", []int{2}}}}},
		{"oversized alone", ops(10, 500, 10), nil, same(3), 10, 100, [][]msg{{{"g", []int{0}}, {"g", []int{1}}, {"g", []int{2}}}}},
		{"by ack", ops(0, 0, 0, 0), []string{"all", "all", "", "all"}, same(4), 10, 1000,
			[][]msg{{{"g", []int{0, 1}}, {"g", []int{2}}, {"g", []int{3}}}}},
		{"by destination, first seen first, order kept", ops(0, 0, 0, 0, 0, 0), nil, []string{"b", "a", "b", "c", "a", "b"}, 10, 1000,
			[][]msg{{{"b", []int{0, 2, 5}}}, {{"a", []int{1, 4}}}, {{"c", []int{3}}}}},
		{"by destination then count", ops(0, 0, 0, 0, 0), nil, []string{"a", "b", "a", "a", "b"}, 2, 1000,
			[][]msg{{{"a", []int{0, 2}}, {"a", []int{3}}}, {{"b", []int{1, 4}}}}},
		{"by destination then ack", ops(0, 0, 0, 0), []string{"all", "", "", "all"}, []string{"a", "b", "a", "a"}, 10, 1000,
			[][]msg{{{"a", []int{0}}, {"a", []int{2}}, {"a", []int{3}}}, {{"b", []int{1}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lanes := plan(tc.ops, tc.acks, tc.dests, tc.maxOps, tc.maxBytes)
			var got [][]msg
			for _, lane := range lanes {
				var l []msg
				for _, m := range lane {
					l = append(l, msg{m.dest, m.idx})
				}
				got = append(got, l)
			}
			if !slices.EqualFunc(got, tc.want, func(a, b []msg) bool {
				return slices.EqualFunc(a, b, func(x, y msg) bool { return x.dest == y.dest && slices.Equal(x.idx, y.idx) })
			}) {
				t.Errorf("plan = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBatcherFree(t *testing.T) {
	for _, tc := range []struct {
		inFlight map[string]int
		free     []string
		busy     []string
	}{
		{map[string]int{}, []string{"a", "b"}, nil},
		{map[string]int{"a": 1}, []string{"a", "b"}, nil},
		{map[string]int{"a": 2}, []string{"b"}, []string{"a"}}, // a slow node does not hold up b
		{map[string]int{"a": 1, "b": 1}, []string{"c"}, []string{"a", "b"}},
		{map[string]int{"a": 1, "b": 1, "c": 1}, []string{"d"}, []string{"a", "b", "c"}},
	} {
		b := &batcher{maxInFlight: 2, inFlight: tc.inFlight}
		for _, n := range tc.inFlight {
			b.total += n
		}
		for _, d := range tc.free {
			if !b.free(d) {
				t.Errorf("in flight %v: %s not free", tc.inFlight, d)
			}
		}
		for _, d := range tc.busy {
			if b.free(d) {
				t.Errorf("in flight %v: %s free", tc.inFlight, d)
			}
		}
	}
}
