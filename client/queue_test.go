package client

import (
	"slices"
	"testing"
	"time"

	"github.com/roostkv/roost/bus/wire"
)

func testCall(key, ack string, size int, done chan struct{}) *call {
	return &call{req: wire.Request{Key: key}, ack: ack, size: size, done: done}
}

// until sets the call's deadline.
func (c *call) until(t time.Time) *call {
	c.deadline = t
	return c
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
	now := time.Now()
	past, future := now.Add(-time.Millisecond), now.Add(time.Second)
	for _, tc := range []struct {
		name        string
		calls       []*call
		maxOps      int
		maxBytes    int
		wantAck     string
		want        []string // keys of the batch
		wantDropped []string // keys removed unsent
		wantLeft    []string // keys still waiting
	}{
		{"empty", nil, 4, 100, "", nil, nil, nil},
		{"all fit", []*call{testCall("a", "", 1, nil), testCall("b", "", 1, nil)}, 4, 100, "", []string{"a", "b"}, nil, nil},
		{"max ops", []*call{testCall("a", "", 1, nil), testCall("b", "", 1, nil), testCall("c", "", 1, nil)}, 2, 100, "", []string{"a", "b"}, nil, []string{"c"}},
		{"oldest ack first, others keep their place",
			[]*call{testCall("a", "all", 1, nil), testCall("b", "", 1, nil), testCall("c", "all", 1, nil), testCall("d", "", 1, nil)},
			4, 100, "all", []string{"a", "c"}, nil, []string{"b", "d"}},
		{"bytes", []*call{testCall("a", "", 40, nil), testCall("b", "", 40, nil), testCall("c", "", 30, nil), testCall("d", "", 10, nil)},
			4, 100, "", []string{"a", "b", "d"}, nil, []string{"c"}},
		{"oversized goes alone", []*call{testCall("a", "", 500, nil), testCall("b", "", 1, nil)}, 4, 100, "", []string{"a"}, nil, []string{"b"}},
		{"abandoned dropped", []*call{testCall("a", "all", 1, gone), testCall("b", "", 1, nil), testCall("c", "all", 1, gone)},
			4, 100, "", []string{"b"}, []string{"a", "c"}, nil},
		{"all abandoned", []*call{testCall("a", "", 1, gone)}, 4, 100, "", nil, []string{"a"}, nil},
		{"past their deadline dropped",
			[]*call{testCall("a", "", 1, nil).until(past), testCall("b", "", 1, nil).until(future), testCall("c", "", 1, nil).until(past)},
			4, 100, "", []string{"b"}, []string{"a", "c"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q queue
			for _, c := range tc.calls {
				q.push(c)
			}
			ack, batch, dropped := q.next(tc.maxOps, tc.maxBytes, now, time.Minute)
			if ack != tc.wantAck || !slices.Equal(keysOf(batch), tc.want) {
				t.Errorf("next = %q %v, want %q %v", ack, keysOf(batch), tc.wantAck, tc.want)
			}
			if !slices.Equal(keysOf(dropped), tc.wantDropped) {
				t.Errorf("dropped %v, want %v", keysOf(dropped), tc.wantDropped)
			}
			if left := keysOf(q.takeAll()); !slices.Equal(left, tc.wantLeft) {
				t.Errorf("left %v, want %v", left, tc.wantLeft)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	ops := func(sizes ...int) []wire.Request {
		var r []wire.Request
		for _, s := range sizes {
			r = append(r, wire.Request{Value: make([]byte, s)})
		}
		return r
	}
	same := func(n int) []string { return slices.Repeat([]string{"g"}, n) }
	o := opSize(&wire.Request{}) // per-op overhead
	type msg struct {
		dest string
		idx  []int
	}
	for _, tc := range []struct {
		name     string
		ops      []wire.Request
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

// TestQueueStampsCalls: a call made with no deadline gets the client's
// timeout from the first time its queue is looked at, taken or left
// behind, and is dropped unsent once that passes.
func TestQueueStampsCalls(t *testing.T) {
	var q queue
	now := time.Now()
	own := now.Add(time.Hour)
	q.push(testCall("a", "", 1, nil))
	q.push(testCall("b", "", 1, nil))
	q.push(testCall("c", "", 1, nil).until(own))
	_, batch, _ := q.next(1, 100, now, time.Second)
	if len(batch) != 1 || !batch[0].deadline.Equal(now.Add(time.Second)) {
		t.Fatalf("taken: %v with deadline %v, want a with now+1s", keysOf(batch), batch[0].deadline)
	}
	if got := q.earliest(); !got.Equal(now.Add(time.Second)) {
		t.Errorf("left behind: earliest deadline %v, want now+1s", got)
	}
	_, batch, dropped := q.next(4, 100, now.Add(2*time.Second), time.Second)
	if !slices.Equal(keysOf(dropped), []string{"b"}) || !slices.Equal(keysOf(batch), []string{"c"}) || !batch[0].deadline.Equal(own) {
		t.Errorf("2 s later: dropped %v, batch %v, want b dropped and c sent with its own deadline", keysOf(dropped), keysOf(batch))
	}
}
