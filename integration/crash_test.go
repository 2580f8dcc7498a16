package integration

// The deterministic case of losing acknowledged writes (issue 11): a node
// rejoins, and another dies about a second later, before the rejoined node
// holds what the others handed over to it.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestRejoinThenCrash: three processes, R=2. 2000 keys are written with
// Roost-Ack: all; n2 is killed (kill -9), declared dead by its peers, and
// restarted under its name, empty; 1000 more keys are written with ack=all
// while n1 is killed 1 s after n2's process started: its peers adopt the
// table with n2 in it about 0.4 s after the start, on its first heartbeat,
// and n2 computes its own table about a second after that. Every acked write
// must then read back, through n3 and through n2, with its value and at
// least its acked version: with R=2, every partition had a second owner
// (n3, or n2 once caught up) when n1 died.
func TestRejoinThenCrash(t *testing.T) {
	// Not parallel: kill -9 and restarts, timed against heartbeats.
	if testing.Short() {
		t.Skip("kills and restarts processes")
	}
	c := startProcCluster(t, procClusterOptions{Args: []string{"--replicas", "2"}})
	h := newHistory()
	nodes := []string{"n1", "n2", "n3"}
	conns := map[string]*nats.Conn{}
	for _, n := range nodes {
		conns[n] = dialURL(t, c.url(n))
	}
	// writeKeys sets keys prefix.from..prefix.(to-1), 8 at a time, round
	// robin over the nodes given, and returns how many were acked.
	writeKeys := func(prefix string, from, to int, via ...string) int {
		var acked atomic.Int64
		var wg sync.WaitGroup
		next := make(chan int)
		for w := range 8 {
			nc := conns[via[w%len(via)]]
			wg.Go(func() {
				for i := range next {
					key := fmt.Sprintf("%s.%d", prefix, i)
					if h.set(nc, key, fmt.Sprintf("%s=%d", key, i), faultWriteTimeout).acked {
						acked.Add(1)
					}
				}
			})
		}
		for i := from; i < to; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		return int(acked.Load())
	}

	if n := writeKeys("before", 0, 2000, "n1", "n2", "n3"); n != 2000 {
		t.Fatalf("only %d of 2000 writes acked on a healthy cluster: %s", n, h.summary())
	}
	_, inc := statusOf(t, c.url("n3"), "n2")
	c.kill("n2")
	c.waitStatus("n1", "n2", "dead", 5*time.Second)
	c.waitStatus("n3", "n2", "dead", 5*time.Second)
	launched := time.Now()
	c.launch("n2")
	// Its peers hear its first heartbeat about 0.4 s after the launch and
	// adopt the table with n2 in it; n2 computes its own about a second
	// after that. n1 dies in between.
	c.waitRestarted("n3", "n2", inc, 10*time.Second)
	seen := time.Since(launched)

	// 1000 more keys through n1 and n3, while n1 dies 1 s after n2 started.
	var after int
	done := make(chan struct{})
	go func() {
		defer close(done)
		after = writeKeys("after", 0, 1000, "n1", "n3")
	}()
	<-time.After(time.Second - time.Since(launched)) // the fault schedule: 1 s after the start
	c.kill("n1")
	<-done
	c.event("writes done: %d of 1000 acked", after)
	t.Logf("n3 saw n2 back %s after its launch; n1 killed at 1 s; %s", seen.Round(time.Millisecond), h.summary())

	c.waitStatus("n3", "n1", "dead", 5*time.Second)
	c.waitFormed(10 * time.Second)
	h.waitAllRight(t, c, []string{"n3", "n2"}, 20*time.Second)
}
