package node

import (
	"testing"

	"github.com/roostkv/roost/actors/store"
	"github.com/vmihailenco/msgpack/v5"
)

// TestFeedEventsDecode: event messages are told from change messages, and
// DecodeChanges keeps their Event.
func TestFeedEventsDecode(t *testing.T) {
	changes := appendChange(appendChange(nil, store.Change{Key: "a", Version: 1}), store.Change{Key: "b", Version: 2, Deleted: true})
	if isEventMessage(changes) {
		t.Fatal("a message of changes is taken for events")
	}
	var events []byte
	for _, c := range []Change{
		{Key: "a", Version: 5, Deleted: true, Event: &FeedEvent{Reason: "expired", Node: "n1"}},
		{Key: "b", Version: 6, Deleted: true, Event: &FeedEvent{Reason: "evicted", Node: "n2"}},
	} {
		b, err := msgpack.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, b...)
	}
	if !isEventMessage(events) {
		t.Fatal("a message of events is not recognised")
	}
	got, err := DecodeChanges(events)
	if err != nil || len(got) != 2 || got[0].Event == nil || got[0].Event.Reason != "expired" || got[1].Event.Node != "n2" || got[1].Version != 6 {
		t.Fatalf("DecodeChanges(events) = %+v, %v", got, err)
	}
	plain, err := DecodeChanges(changes)
	if err != nil || len(plain) != 2 || plain[0].Event != nil || !plain[1].Deleted {
		t.Fatalf("DecodeChanges(changes) = %+v, %v", plain, err)
	}
	if _, err := DecodeChanges(append(events[:len(events):len(events)], 0xc1)); err == nil {
		t.Fatal("a broken event message decodes without an error")
	}
}

// TestNotifyGoneWaiters: an expiry marks the waiters of the key and of its
// prefixes to answer now; a change does not.
func TestNotifyGoneWaiters(t *testing.T) {
	var ws waiters
	ws.init()
	key, prefix, other := ws.add("a/b", false), ws.add("a/", true), ws.add("c", false)
	ws.notify("a/b")
	if key.gone.Load() || prefix.gone.Load() {
		t.Fatal("a change marked a waiter gone")
	}
	<-key.wake
	<-prefix.wake
	ws.notifyGone("a/b")
	if !key.gone.Load() || !prefix.gone.Load() || other.gone.Load() {
		t.Fatalf("gone: key %v prefix %v other %v", key.gone.Load(), prefix.gone.Load(), other.gone.Load())
	}
	select {
	case <-key.wake:
	default:
		t.Fatal("the key's waiter was not woken")
	}
}
