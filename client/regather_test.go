package client_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/roostkv/roost/client"
)

// TestCallersAnsweredTogetherLeaveTogether checks that callers who call
// again as soon as they are answered keep sharing messages: a lane's sender
// waits for them (regather) instead of sending the first to come back
// alone. Without it, the batches of 128 looping callers averaged about 45
// operations (BENCHMARKS.md, issue 15); the bound here is loose, for a
// loaded machine and -race.
func TestCallersAnsweredTogetherLeaveTogether(t *testing.T) {
	const (
		callers = 128
		rounds  = 40
	)
	c, node := setup(t, client.WithTimeout(30*time.Second))
	ctx := context.Background()
	if _, err := c.Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	msgs0, ops0 := node.batches.Load(), node.ops.Load()
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range rounds {
				if _, err := c.Get(ctx, "k"); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	msgs, ops := node.batches.Load()-msgs0, node.ops.Load()-ops0
	perMsg := float64(ops) / float64(msgs)
	t.Logf("%d gets in %d messages: %.1f per message", ops, msgs, perMsg)
	if perMsg < callers*3/8 {
		t.Errorf("%.1f gets per message with %d callers, want at least %d: answered callers leave apart", perMsg, callers, callers*3/8)
	}
}
