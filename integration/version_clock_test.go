package integration

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/roostkv/roost/node"
	"github.com/roostkv/roost/partition"
)

// TestVersionClockRisesAcrossNodes holds the one guarantee of the version
// clock that neither replication nor the KV reads give: a node that holds
// no copy of a key still takes, within the feed's bound, versions above
// the key's (docs/http.md, "Blocking queries"; node/changes.go). With one
// copy per partition (--replicas 1), n2 never applies n1's writes, and the
// change feed is the only path from n1's versions to n2's clock: remove
// its Observe and n2's versions stay at its wall clock, 20 s below.
func TestVersionClockRisesAcrossNodes(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 2, func(_ int, c *node.Config) { c.Replicas = 1 })
	n1, n2 := nodes[0], nodes[1]
	onN1 := keyLedBy(t, n1, "clock/", n1.Name())
	onN2 := keyLedBy(t, n1, "clock/", n2.Name())

	// A blocking read at the key's primary first raises that node's clock
	// above the index the client holds (kv_read.go): so n1's clock runs
	// 20 s ahead of the wall clock, as it would after a peer's skew.
	ahead := uint64(time.Now().Add(20 * time.Second).UnixMicro())
	resp, err := http.Get(fmt.Sprintf("http://%s/v1/kv/%s?index=%d&wait=1ms", n1.HTTPAddr(), onN1, ahead))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	nc := connect(t, n1)
	v1 := request(t, nc, "roost.set."+onN1, []byte("x")).version(t)
	if v1 <= ahead {
		t.Fatalf("n1 wrote version %d, below the index %d it observed", v1, ahead)
	}
	if owners := n1.Table().Owners[partition.Of(onN1, n1.Table().Partitions)]; len(owners) != 1 {
		t.Fatalf("%s has owners %v: with --replicas 1, n2 must hold no copy of it", onN1, owners)
	}
	eventually(t, 5*time.Second, func() error {
		v2 := request(t, nc, "roost.set."+onN2, []byte("y")).version(t)
		if v2 <= v1 {
			return fmt.Errorf("n2 wrote version %d after n1 wrote %d (%s behind)", v2, v1, time.Duration(v1-v2)*time.Microsecond)
		}
		return nil
	})
}
