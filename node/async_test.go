package node

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAsyncGroup: close waits for the goroutines started before it, while
// handlers keep calling Go meanwhile (under -race, this is where a plain
// WaitGroup's Add raced with its Wait); after close, Go runs inline.
func TestAsyncGroup(t *testing.T) {
	var g asyncGroup
	var ran atomic.Int32
	release := make(chan struct{})
	g.Go(func() { <-release; ran.Add(1) })

	var callers sync.WaitGroup
	for range 8 {
		callers.Go(func() {
			for range 100 {
				g.Go(func() { ran.Add(1) })
			}
		})
	}
	done := g.close()
	select {
	case <-done:
		t.Fatal("close's wait ended while a goroutine started before it still ran")
	default:
	}
	close(release)
	callers.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("close's wait did not end")
	}
	if n := ran.Load(); n != 801 {
		t.Fatalf("%d functions ran, want 801", n)
	}
	g.Go(func() { ran.Add(1) })
	if n := ran.Load(); n != 802 {
		t.Fatalf("after close, Go did not run its function before returning (%d ran)", n)
	}
}
