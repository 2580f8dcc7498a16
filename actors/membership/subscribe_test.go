package membership

import (
	"sync/atomic"
	"testing"
)

func TestSubscribersNewestViewWins(t *testing.T) {
	var cur atomic.Pointer[snapshot]
	var subs subscribers
	cur.Store(&snapshot{view: View{Version: 1}})
	ch, cancel := subs.subscribe(&cur)
	other, cancelOther := subs.subscribe(&cur)
	defer cancelOther()
	if v := <-ch; v.Version != 1 {
		t.Fatalf("first view %d, want the current one (1)", v.Version)
	}
	// A reader that does not keep up finds the newest view, and the
	// publisher never blocks.
	for v := uint64(2); v <= 5; v++ {
		subs.publish(&cur, &snapshot{view: View{Version: v}}, true)
	}
	if v := <-ch; v.Version != 5 {
		t.Fatalf("got view %d, want 5", v.Version)
	}
	select {
	case v := <-ch:
		t.Fatalf("extra view %d", v.Version)
	default:
	}
	// Without notify the snapshot changes, subscribers hear nothing.
	subs.publish(&cur, &snapshot{view: View{Version: 5}}, false)
	select {
	case v := <-ch:
		t.Fatalf("notified of %d", v.Version)
	default:
	}
	cancel()
	cancel() // idempotent
	if _, ok := <-ch; ok {
		t.Fatal("channel open after cancel")
	}
	subs.publish(&cur, &snapshot{view: View{Version: 6}}, true) // a cancelled subscriber is skipped
	if v := <-other; v.Version != 6 {
		t.Fatalf("other subscriber got %d, want 6", v.Version)
	}
	subs.close()
	if _, ok := <-other; ok {
		t.Fatal("channel open after close")
	}
	late, cancelLate := subs.subscribe(&cur)
	defer cancelLate()
	if v, ok := <-late; !ok || v.Version != 6 {
		t.Fatalf("late subscriber: %d, %v; want the last view", v.Version, ok)
	}
	if _, ok := <-late; ok {
		t.Fatal("late subscriber's channel open after close")
	}
}
