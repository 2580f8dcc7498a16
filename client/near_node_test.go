package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/roostkv/roost/internal/testkit"
	"github.com/roostkv/roost/node"
	"github.com/roostkv/roost/partition"
)

// The near cache against a real node (in this process, with its embedded
// NATS server): a writer on a connection of its own updates keys while a
// near-cached reader reads them, and every read is checked against the
// writer's acknowledged (version, time). These tests sit inside the client
// package to reach its test hook that loses the feed's messages
// (nearCache.setCut, which unsubscribes the feed): the data path is untouched.

// startNearNode starts a node alone on random loopback ports.
func startNearNode(t *testing.T) *node.Node {
	t.Helper()
	cfg := node.DefaultConfig()
	cfg.Name = "near"
	cfg.Listen = "127.0.0.1:-1"
	cfg.HTTP = node.HTTPOff
	cfg.MaxMemory = 64 << 20
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// acks are a writer's acknowledged writes of one key, in order.
type acks struct {
	mu   sync.Mutex
	vers []uint64
	at   []time.Time // when Set returned: at or after the node applied it
}

func (a *acks) add(v uint64, at time.Time) {
	a.mu.Lock()
	a.vers, a.at = append(a.vers, v), append(a.at, at)
	a.mu.Unlock()
}

// before returns the version of the last write acknowledged before t (0:
// none) and when it was.
func (a *acks) before(t time.Time) (uint64, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	i, _ := slices.BinarySearchFunc(a.at, t, func(x, t time.Time) int { return x.Compare(t) })
	if i == 0 {
		return 0, time.Time{}
	}
	return a.vers[i-1], a.at[i-1]
}

// nearReader reads key through c until stop, and fails t on a version that
// goes back, or one older than the last write acknowledged more than bound
// before the read began.
func nearReader(t *testing.T, c *Client, key string, a *acks, bound time.Duration, stop <-chan struct{}) (reads int) {
	t.Helper()
	var last uint64
	for {
		select {
		case <-stop:
			return reads
		default:
		}
		began := time.Now()
		it, err := c.Get(context.Background(), key)
		if err != nil {
			t.Errorf("read %d: %v", reads, err)
			return reads
		}
		reads++
		if it.Version < last {
			t.Errorf("read %d: version %d after %d: it went back", reads, it.Version, last)
			return reads
		}
		last = it.Version
		if v, at := a.before(began.Add(-bound)); it.Version < v {
			t.Errorf("read %d at %s: version %d, but %d was acknowledged %s before the read began (bound %s)",
				reads, began.Format("15:04:05.000"), it.Version, v, began.Sub(at), bound)
			return reads
		}
	}
}

// waitNearSynced waits until c serves key from its near cache.
func waitNearSynced(t *testing.T, c *Client, key string) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, func() error {
		before := c.NearCacheStats().Hits
		if _, err := c.Get(context.Background(), key); err != nil {
			return err
		}
		if _, err := c.Get(context.Background(), key); err != nil {
			return err
		}
		if c.NearCacheStats().Hits == before {
			return errors.New("the near cache serves nothing yet")
		}
		return nil
	})
}

// TestNearCacheFollowsAWriter: 10,000 updates of one key by another
// connection while a near-cached reader reads it, its feed cut and restored
// mid-run. The reader never sees a version go back nor one older than ttl.
func TestNearCacheFollowsAWriter(t *testing.T) {
	updates, ttl := 10_000, 100*time.Millisecond
	if testing.Short() { // -race -short in CI: the same run, shorter
		updates = 2_000
	}
	n := startNearNode(t)
	writer, err := Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	reader, err := Connect(n.ClientURL(), WithNearCache(1<<20, ttl))
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	ctx := context.Background()
	var a acks
	v, err := writer.Set(ctx, "hot", []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	a.add(v, time.Now())
	waitNearSynced(t, reader, "hot")

	stop := make(chan struct{})
	var reads int
	var wg sync.WaitGroup
	wg.Go(func() { reads = nearReader(t, reader, "hot", &a, ttl, stop) })
	start := time.Now()
	for i := 1; i <= updates; i++ {
		switch i {
		case updates / 3:
			reader.near.setCut(true) // the feed's messages are lost from now...
		case updates / 2:
			reader.near.setCut(false) // ... until now
		}
		v, err := writer.Set(ctx, "hot", []byte(strconv.Itoa(i)))
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		a.add(v, time.Now())
	}
	close(stop)
	wg.Wait()
	s := reader.NearCacheStats()
	t.Logf("%d updates in %s; %d reads, near cache %+v", updates, time.Since(start).Round(time.Millisecond), reads, s)
	if s.Hits == 0 || s.Invalidations == 0 {
		t.Fatalf("the near cache served nothing or heard no change: %+v", s)
	}
}

// TestNearCacheSeesALostChange: with a long ttl, the feed cut while a key
// changes, then restored. The near cache must see what it lost from the
// feed alone, within a bound far below ttl: from the gap in the partition's
// sequence when another key of the partition changes next, or from the
// node's beacon when nothing changes any more.
func TestNearCacheSeesALostChange(t *testing.T) {
	const ttl, bound, cut = time.Minute, 2 * time.Second, 300 * time.Millisecond
	n := startNearNode(t)
	writer, err := Connect(n.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	ctx := context.Background()
	// other is a key of key's partition: its changes continue the sequence.
	const partitions = node.DefaultPartitions
	sibling := func(key string) string {
		for i := 0; ; i++ {
			if k := fmt.Sprintf("other%d", i); partition.Of(k, partitions) == partition.Of(key, partitions) {
				return k
			}
		}
	}
	for _, after := range []string{"the next change of another key", "the beacon"} {
		t.Run(after, func(t *testing.T) {
			key := "lost-" + strconv.Itoa(len(after))
			other := sibling(key)
			reader, err := Connect(n.ClientURL(), WithNearCache(1<<20, ttl))
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Close()
			var a acks
			v, err := writer.Set(ctx, key, []byte("0"))
			if err != nil {
				t.Fatal(err)
			}
			a.add(v, time.Now())
			waitNearSynced(t, reader, key)

			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() { nearReader(t, reader, key, &a, bound, stop) })
			reader.near.setCut(true)
			for end := time.Now().Add(cut); time.Now().Before(end); {
				v, err := writer.Set(ctx, key, []byte("during the cut"))
				if err != nil {
					t.Fatal(err)
				}
				a.add(v, time.Now())
			}
			reader.near.setCut(false)
			// Without the sequence, the key's entry would now be served
			// until its ttl, or until the feed went unheard for three
			// beacons (past the bound since the cut began).
			for end := time.Now().Add(bound + bound/4); time.Now().Before(end); {
				if after == "the beacon" {
					time.Sleep(10 * time.Millisecond) // nothing changes: only the beacon tells
					continue
				}
				if _, err := writer.Set(ctx, other, []byte("x")); err != nil {
					t.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			close(stop)
			wg.Wait()
			s := reader.NearCacheStats()
			t.Logf("near cache %+v", s)
			if s.PartitionDrops == 0 {
				t.Fatalf("no partition dropped: %+v", s)
			}
		})
	}
}
