package store

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestHugePoolHandsOutDisjointZeroedMemory allocates and frees random
// sizes in random order, writing every byte handed out, and checks that
// no two live allocations overlap, that each comes zeroed (freed units are
// dirty until handed out again), that a block's bookkeeping matches what
// is live, and that once everything is freed and the pool drained nothing
// is mapped.
func TestHugePoolHandsOutDisjointZeroedMemory(t *testing.T) {
	var p hugePool
	rng := rand.New(rand.NewPCG(1, 2))
	type live struct {
		b    []byte
		fill byte
	}
	var held []live
	sizes := []int{mapMin, mapMin + 1, 96 << 10, 256 << 10, 1 << 20, hugePageBytes, hugePageBytes + 4096}
	check := func() {
		t.Helper()
		type span struct{ lo, hi uintptr }
		var spans []span
		for _, l := range held {
			lo := uintptr(unsafe.Pointer(unsafe.SliceData(l.b)))
			s := span{lo, lo + uintptr(len(l.b))}
			for _, o := range spans {
				if s.lo < o.hi && o.lo < s.hi {
					t.Fatalf("allocations overlap: [%x,%x) and [%x,%x)", s.lo, s.hi, o.lo, o.hi)
				}
			}
			spans = append(spans, s)
			if l.b[0] != l.fill || l.b[len(l.b)-1] != l.fill {
				t.Fatalf("an allocation's bytes changed under it")
			}
		}
		used := 0
		for _, blk := range p.blocks {
			used += blockUnits - blk.free
		}
		want := 0
		for _, l := range held {
			if len(l.b) <= hugePageBytes {
				want += (len(l.b) + unitBytes - 1) / unitBytes
			}
		}
		if used != want {
			t.Fatalf("blocks have %d units in use, the live allocations %d", used, want)
		}
	}
	for step := range 600 {
		if len(held) > 0 && (rng.IntN(2) == 0 || len(held) > 40) {
			i := rng.IntN(len(held))
			p.free(held[i].b)
			held = append(held[:i], held[i+1:]...)
		} else {
			n := sizes[rng.IntN(len(sizes))]
			b, ok := p.alloc(n)
			if !ok {
				t.Skip("this system maps no memory")
			}
			if len(b) != n || cap(b) != n {
				t.Fatalf("alloc(%d) gave len %d cap %d", n, len(b), cap(b))
			}
			for j, c := range b {
				if c != 0 {
					t.Fatalf("step %d: alloc(%d) byte %d is %d, not zeroed", step, n, j, c)
				}
			}
			fill := byte(step%255 + 1)
			for j := range b {
				b[j] = fill
			}
			held = append(held, live{b, fill})
		}
		if step%50 == 0 {
			check()
		}
	}
	check()
	for _, l := range held {
		p.free(l.b)
	}
	p.drain()
	if p.mappedBytes() != 0 || len(p.blocks) != 0 || len(p.byBase) != 0 {
		t.Fatalf("after freeing everything: %d bytes, %d blocks mapped", p.mappedBytes(), len(p.blocks))
	}
}

func TestHugeBlockFit(t *testing.T) {
	tests := []struct {
		name   string
		used   []int // units in use
		k      int
		want   int
		wantOK bool
	}{
		{"empty, one unit", nil, 1, 0, true},
		{"empty, whole block", nil, blockUnits, 0, true},
		{"after the first", []int{0}, 1, 1, true},
		{"a gap too small is passed over", []int{0, 2}, 2, 3, true},
		{"a run across a word boundary", seq(0, 62), 3, 62, true},
		{"full", seq(0, blockUnits), 1, 0, false},
		{"the last unit", seq(0, blockUnits-1), 1, blockUnits - 1, true},
		{"no room for two at the end", seq(0, blockUnits-1), 2, 0, false},
		{"a full first word is skipped", seq(0, 64), 64, 64, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var blk hugeBlock
			for _, u := range tt.used {
				blk.used[u/unitsPerWord] |= 1 << (u % unitsPerWord)
			}
			got, ok := blk.fit(tt.k)
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Fatalf("fit(%d) = %d, %v; want %d, %v", tt.k, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func seq(lo, hi int) []int {
	var s []int
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}
