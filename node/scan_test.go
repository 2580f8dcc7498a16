package node

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/roostkv/roost/bus/wire"
)

func entries(keys ...string) []wire.Entry {
	out := make([]wire.Entry, len(keys))
	for i, k := range keys {
		out[i] = wire.Entry{Key: k}
	}
	return out
}

func keysOf(es []wire.Entry) string {
	var ks []string
	for _, e := range es {
		ks = append(ks, e.Key)
	}
	return strings.Join(ks, ",")
}

func TestMergeScan(t *testing.T) {
	tests := []struct {
		name  string
		pages []wire.ScanResponse
		limit int
		want  string
		more  bool
	}{
		{"all complete", []wire.ScanResponse{{Entries: entries("a", "d")}, {Entries: entries("b", "c")}}, 10, "a,b,c,d", false},
		{"limit cuts", []wire.ScanResponse{{Entries: entries("a", "d")}, {Entries: entries("b", "c")}}, 3, "a,b,c", true},
		{"a short page bounds the merge", []wire.ScanResponse{{Entries: entries("a", "b"), More: true}, {Entries: entries("c", "d")}}, 10, "a,b", true},
		{"shortest cut wins", []wire.ScanResponse{{Entries: entries("a", "e"), More: true}, {Entries: entries("b", "c"), More: true}, {Entries: entries("d")}}, 10, "a,b,c", true},
		{"empty", []wire.ScanResponse{{}, {}}, 10, "", false},
	}
	for _, tt := range tests {
		got := mergeScan(tt.pages, tt.limit)
		if keysOf(got.Entries) != tt.want || got.More != tt.more {
			t.Errorf("%s: got %s more=%v, want %s more=%v", tt.name, keysOf(got.Entries), got.More, tt.want, tt.more)
		}
	}
}

// TestMergeScanPagesThroughEverything pages a random key set spread over
// three nodes, each answering at most `limit` keys after the cursor, and
// checks every key comes out once, in order.
func TestMergeScanPagesThroughEverything(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	nodes := make([][]string, 3)
	var all []string
	for i := range 500 {
		k := fmt.Sprintf("k%06d-%d", rng.IntN(1000000), i) // unique, in random order
		n := rng.IntN(3)                                   // each key lives on one node
		nodes[n] = append(nodes[n], k)
		all = append(all, k)
	}
	for i := range nodes {
		slices.Sort(nodes[i])
	}
	slices.Sort(all)
	page := func(keys []string, after string, limit int) wire.ScanResponse {
		i, _ := slices.BinarySearch(keys, after)
		if i < len(keys) && keys[i] == after {
			i++
		}
		end := min(i+limit, len(keys))
		return wire.ScanResponse{Entries: entries(keys[i:end]...), More: end < len(keys)}
	}
	for _, limit := range []int{1, 7, 64, 1000} {
		var got []string
		after := ""
		for range 10000 {
			pages := make([]wire.ScanResponse, len(nodes))
			for i, keys := range nodes {
				pages[i] = page(keys, after, limit)
			}
			m := mergeScan(pages, limit)
			for _, e := range m.Entries {
				got = append(got, e.Key)
			}
			if !m.More {
				break
			}
			if len(m.Entries) == 0 {
				t.Fatalf("limit %d: a page with More and no keys", limit)
			}
			after = m.Entries[len(m.Entries)-1].Key
		}
		if strings.Join(got, ",") != strings.Join(all, ",") {
			t.Fatalf("limit %d: paged %d keys, want %d", limit, len(got), len(all))
		}
	}
}
