package client_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/roostkv/roost/client"
)

// The values of one batch reply are handed out as slices of the reply, not
// copies (client.Item). These tests check that each Value is still its
// caller's alone: a caller that overwrites its value's bytes, or appends
// to it, changes no other caller's value. Without each value's capacity
// ending at its length, an append writes over the reply's next bytes, the
// value of the next key among them.

// valueOf is the value stored under key in these tests: size bytes, its
// own pattern.
func valueOf(key string, size int) []byte {
	return bytes.Repeat([]byte(key+"."), size/(len(key)+1)+1)[:size]
}

// scribble changes every byte of v and appends to it, as a careless
// caller might.
func scribble(v []byte) {
	for i := range v {
		v[i] = '#'
	}
	v = append(v, bytes.Repeat([]byte{'!'}, 64)...) // as far as the next value, if it wrote in place
	_ = v
}

// checkUntouched scribbles over each item's value in turn and checks after
// each that the others still hold what was stored.
func checkUntouched(t *testing.T, items []client.Item, size int) {
	t.Helper()
	for i := range items {
		scribble(items[i].Value)
		for j := i + 1; j < len(items); j++ {
			if want := valueOf(items[j].Key, size); !bytes.Equal(items[j].Value, want) {
				t.Fatalf("after a change to %s's value, %s's value is %.40q..., want %.40q...", items[i].Key, items[j].Key, items[j].Value, want)
			}
		}
	}
}

// TestMGetValuesAreTheirCallers: the values of one MGet, one reply, small
// (shared with the reply) and large (copied out, the reply over 64 KiB).
func TestMGetValuesAreTheirCallers(t *testing.T) {
	for _, size := range []int{100, 40 << 10} {
		t.Run(fmt.Sprintf("value=%dB", size), func(t *testing.T) {
			c, node := setup(t)
			ctx := context.Background()
			keys := []string{"a", "b", "c", "d"}
			for _, k := range keys {
				if _, err := c.Set(ctx, k, valueOf(k, size)); err != nil {
					t.Fatal(err)
				}
			}
			before := node.batches.Load()
			items, err := c.MGet(ctx, keys...)
			if err != nil {
				t.Fatal(err)
			}
			if n := node.batches.Load() - before; n != 1 {
				t.Fatalf("MGet of %d keys took %d messages, want 1", len(keys), n)
			}
			checkUntouched(t, items, size)
		})
	}
}

// TestGetValuesAreTheirCallers: concurrent Gets answered by one batch
// reply, each caller changing its own value.
func TestGetValuesAreTheirCallers(t *testing.T) {
	const size = 100
	c, node := setup(t, client.WithMaxInFlight(1))
	ctx := context.Background()
	keys := []string{"a", "b", "c", "d"}
	for _, k := range keys {
		if _, err := c.Set(ctx, k, valueOf(k, size)); err != nil {
			t.Fatal(err)
		}
	}
	// A held get keeps the only slot busy while the others queue behind
	// it; released, they leave as one message.
	release := node.hold("slow")
	defer release()
	slow := make(chan error, 1)
	go func() { _, err := c.Get(ctx, "slow"); slow <- err }()
	waitArrived(t, node, "slow")
	items := make([]client.Item, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			it, err := c.Get(ctx, k)
			if err != nil {
				t.Errorf("Get %s: %v", k, err)
			}
			items[i] = it
		})
	}
	checkFor(t, 5*time.Second, func() error {
		if n := client.Waiting(c); n != len(keys) {
			return fmt.Errorf("%d calls waiting, want %d", n, len(keys))
		}
		return nil
	})
	release()
	wg.Wait()
	<-slow
	if log := node.batchLog(); len(log[len(log)-1].Ops) != len(keys) {
		t.Fatalf("the queued gets went in a message of %d ops, want %d", len(log[len(log)-1].Ops), len(keys))
	}
	checkUntouched(t, items, size)
}
