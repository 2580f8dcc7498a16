package store

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/roostkv/roost/internal/testkit"
)

// TestMappedMemoryGoesWithTheStore fills a store until its shards map
// memory, drops the store, and waits for the collector's cleanup to unmap
// it all.
func TestMappedMemoryGoesWithTheStore(t *testing.T) {
	s, err := New(Config{Shards: 2})
	if err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 100)
	for i := range 20000 {
		if _, err := s.Set(SetRequest{Key: fmt.Sprintf("key-%d", i), Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	mems := []*offheap{s.shards[0].sl.mem, s.shards[1].sl.mem}
	mapped := func() int64 { return mems[0].bytes.Load() + mems[1].bytes.Load() }
	if mapped() == 0 {
		t.Fatal("20 000 entries mapped nothing: the store is on the Go heap")
	}
	if got := s.OffHeapBytes(); got != mapped() {
		t.Fatalf("OffHeapBytes %d, the shards mapped %d", got, mapped())
	}
	s = nil
	testkit.Eventually(t, 10*time.Second, func() error {
		runtime.GC()
		if n := mapped(); n != 0 {
			return fmt.Errorf("%d bytes still mapped", n)
		}
		return nil
	})
}
