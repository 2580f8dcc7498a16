package node

import (
	"reflect"
	"testing"
)

// groupByPartition keeps each partition's ops in their batch order, and
// gives each group a slice of its own: appending to one does not write
// into the next.
func TestGroupByPartition(t *testing.T) {
	for _, c := range []struct {
		name string
		refs []opRef
		want []opGroup
	}{
		{"none", nil, nil},
		{"one", []opRef{{p: 7, i: 0}}, []opGroup{{p: 7, idx: []int{0}}}},
		{"interleaved", []opRef{{p: 3, i: 0}, {p: 1, i: 1}, {p: 3, i: 2}, {p: 2, i: 3}, {p: 1, i: 5}, {p: 3, i: 6}},
			[]opGroup{{p: 1, idx: []int{1, 5}}, {p: 2, idx: []int{3}}, {p: 3, idx: []int{0, 2, 6}}}},
		{"one partition", []opRef{{p: 4, i: 0}, {p: 4, i: 1}, {p: 4, i: 2}}, []opGroup{{p: 4, idx: []int{0, 1, 2}}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := groupByPartition(c.refs)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for _, g := range got {
				if cap(g.idx) != len(g.idx) {
					t.Fatalf("group of p%d: capacity %d, length %d: an append would overwrite the next group", g.p, cap(g.idx), len(g.idx))
				}
			}
		})
	}
}
