package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/integration/netfault"
)

// TestNearCacheAcrossFailover: a near-cached reader on n1 reads a key led by
// n3, which is killed. Another node leads the partition under a new term;
// the near cache hears of the term (a beacon or a change of the new
// primary), drops the partition's entries, and serves the new primary's
// write of the key long before its ttl. Its versions never go back.
func TestNearCacheAcrossFailover(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	key := keyLedBy(t, nodes[0], "near", "n3")
	writer := dialClient(t, nodes[0], client.WithTimeout(2*time.Second))
	reader := dialClient(t, nodes[0], client.WithNearCache(1<<20, time.Minute), client.WithTimeout(2*time.Second))
	ctx := context.Background()

	var last uint64 // the reader's last version: it must never go back
	read := func() (client.Item, error) {
		it, err := reader.Get(ctx, key)
		if err == nil {
			if it.Version < last {
				t.Fatalf("the reader saw version %d after %d", it.Version, last)
			}
			last = it.Version
		}
		return it, err
	}
	v1, err := writer.Set(ctx, key, []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error { // until the near cache serves it
		before := reader.NearCacheStats().Hits
		if _, err := read(); err != nil {
			return err
		}
		if _, err := read(); err != nil {
			return err
		}
		if reader.NearCacheStats().Hits == before {
			return errors.New("the near cache serves nothing yet")
		}
		return nil
	})
	drops := reader.NearCacheStats().PartitionDrops

	nodes[2].Kill()
	var v2 uint64
	eventually(t, 10*time.Second, func() error { // until the partition's new primary takes writes
		v, err := writer.Set(ctx, key, []byte("after"))
		v2 = v
		return err
	})
	if v2 <= v1 {
		t.Fatalf("the write after the failover took version %d, not above %d", v2, v1)
	}
	eventually(t, 5*time.Second, func() error { // far below the ttl
		it, err := read()
		if err != nil {
			return err
		}
		if it.Version < v2 {
			return fmt.Errorf("the reader still gets version %d, %d was acknowledged", it.Version, v2)
		}
		return nil
	})
	eventually(t, 5*time.Second, func() error { // the near cache serves the new term's value
		before := reader.NearCacheStats().Hits
		if _, err := read(); err != nil {
			return err
		}
		if reader.NearCacheStats().Hits == before {
			return errors.New("not served from the near cache")
		}
		return nil
	})
	if s := reader.NearCacheStats(); s.PartitionDrops == drops {
		t.Fatalf("the near cache dropped no partition across the failover: %+v", s)
	}
}

// TestNearCacheAcrossAReconnect: a near-cached reader reaches its node
// through a proxy that cuts its connection while another connection writes
// the key, so the reader's feed loses that change. On the reconnect the
// near cache drops every entry before it serves again, and serves the new
// value long before the ttl.
func TestNearCacheAcrossAReconnect(t *testing.T) {
	t.Parallel()
	n := startNode(t, nil)
	proxy, err := netfault.NewProxy(strings.TrimPrefix(n.ClientURL(), "nats://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	writer := dialClient(t, n)
	reader, err := client.Connect("nats://"+proxy.Addr(), client.WithNearCache(1<<20, time.Minute),
		client.WithNATSOptions(nats.ReconnectWait(20*time.Millisecond), nats.MaxReconnects(-1)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reader.Close)
	ctx := context.Background()
	const key = "reconnecting"
	if _, err := writer.Set(ctx, key, []byte("before")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() error { // until the near cache serves it
		before := reader.NearCacheStats().Hits
		for range 2 {
			if _, err := reader.Get(ctx, key); err != nil {
				return err
			}
		}
		if reader.NearCacheStats().Hits == before {
			return errors.New("the near cache serves nothing yet")
		}
		return nil
	})

	proxy.Cut()
	v2, err := writer.Set(ctx, key, []byte("while the reader is away"))
	if err != nil {
		t.Fatal(err)
	}
	proxy.Heal()
	eventually(t, 5*time.Second, func() error {
		if !reader.Conn().IsConnected() {
			return errors.New("the reader has not reconnected")
		}
		it, err := reader.Get(ctx, key)
		if err != nil {
			return err
		}
		if it.Version < v2 {
			return fmt.Errorf("the reader gets version %d after its reconnect; %d was acknowledged", it.Version, v2)
		}
		return nil
	})
	if s := reader.NearCacheStats(); s.FeedLosses == 0 {
		t.Fatalf("the near cache did not see its connection lost: %+v", s)
	}
}
