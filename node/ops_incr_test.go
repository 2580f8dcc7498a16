package node

import (
	"testing"
	"time"

	"github.com/roostkv/roost/bus/wire"
)

// TestCounterOp: the API's checks of an incr, a touch and a get that
// touches, before any of them reaches a replicator.
func TestCounterOp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		op    wire.Request
		code  int   // 0 = valid
		delta int64 // incr: the delta
		ttl   time.Duration
	}{
		{name: "incr, empty delta is 1", op: wire.Request{Op: wire.OpIncr, Key: "k"}, delta: 1},
		{name: "incr, negative delta", op: wire.Request{Op: wire.OpIncr, Key: "k", Value: []byte(" -42\n")}, delta: -42},
		{name: "incr, ttl on create", op: wire.Request{Op: wire.OpIncr, Key: "k", Value: []byte("+3"), TTL: 1500}, delta: 3, ttl: 1500 * time.Millisecond},
		{name: "incr, not a number", op: wire.Request{Op: wire.OpIncr, Key: "k", Value: []byte("1e3")}, code: wire.CodeBadRequest},
		{name: "incr, out of range", op: wire.Request{Op: wire.OpIncr, Key: "k", Value: []byte("9223372036854775808")}, code: wire.CodeBadRequest},
		{name: "incr, negative ttl", op: wire.Request{Op: wire.OpIncr, Key: "k", TTL: -1}, code: wire.CodeBadRequest},
		{name: "incr, ttl over the limit", op: wire.Request{Op: wire.OpIncr, Key: "k", TTL: MaxTTL.Milliseconds() + 1}, code: wire.CodeBadRequest},
		{name: "touch", op: wire.Request{Op: wire.OpTouch, Key: "k", TTL: 60_000}, ttl: time.Minute},
		{name: "touch without ttl", op: wire.Request{Op: wire.OpTouch, Key: "k"}, code: wire.CodeBadRequest},
		{name: "get that touches", op: wire.Request{Op: wire.OpGet, Key: "k", TTL: 1}, ttl: time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op, err := counterOp(&tc.op)
			if tc.code != 0 {
				if codeOf(err) != tc.code || err.Error() == "" {
					t.Fatalf("err %v (code %d), want code %d with a reason", err, codeOf(err), tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.op.Op == wire.OpIncr && (op.Incr == nil || op.Incr.Delta != tc.delta || op.Incr.TTL != tc.ttl || op.Incr.Key != "k"):
				t.Fatalf("incr op %+v, want delta %d ttl %s", op.Incr, tc.delta, tc.ttl)
			case tc.op.Op != wire.OpIncr && (op.Touch == nil || op.Touch.TTL != tc.ttl || op.Set != nil):
				t.Fatalf("touch op %+v, want ttl %s", op.Touch, tc.ttl)
			}
		})
	}
}
