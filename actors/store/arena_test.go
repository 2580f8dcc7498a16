package store

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

func TestClassesCoverEverySize(t *testing.T) {
	prev := 0
	for n := 1; n <= maxClassSize; n++ {
		c, ok := classOf(n)
		if !ok {
			t.Fatalf("%d bytes: no class", n)
		}
		size := int(classSizes[c])
		if size < n || size < prev || size%classStep != 0 {
			t.Fatalf("%d bytes: class %d of %d bytes (previous %d)", n, c, size, prev)
		}
		if n > 256 && float64(size-n) > float64(n)/32+classStep {
			t.Fatalf("%d bytes: class of %d wastes more than 1/32", n, size)
		}
		prev = size
	}
	if _, ok := classOf(maxClassSize + 1); ok {
		t.Fatal("a block beyond maxClassSize has a class")
	}
	for pages := range uint32(12) {
		for _, size := range []uint32{8, 120, 4224, maxClassSize} {
			if n := pageSize(size, pages); n < int(size) || (n < mapMin && n%int(size) != 0) || (n >= mapMin && n%4096 != 0) {
				t.Fatalf("pageSize(%d, %d) = %d", size, pages, n)
			}
		}
	}
}

// TestArenaAgainstModel allocates, writes, frees and reads random blocks
// and checks that every live block keeps its bytes (no two overlap), that
// used counts the blocks' sizes, and that freeing everything gives the
// pages back, the one each class keeps aside.
func TestArenaAgainstModel(t *testing.T) {
	for _, mem := range []*offheap{nil, {}} {
		a := arena{mem: mem}
		rng := rand.New(rand.NewPCG(1, 2))
		type block struct {
			loc  uint64
			data []byte
		}
		var live []block
		var used int64
		size := func() int {
			switch rng.IntN(10) {
			case 0:
				return 1 + rng.IntN(100<<10) // some beyond the classes
			case 1, 2:
				return 1 + rng.IntN(8<<10)
			}
			return 1 + rng.IntN(300)
		}
		for step := range 20000 {
			if len(live) > 0 && rng.IntN(2) == 0 {
				j := rng.IntN(len(live))
				b := live[j]
				if got := a.view(b.loc, len(b.data)); !bytes.Equal(got, b.data) {
					t.Fatalf("step %d: block at %#x changed", step, b.loc)
				}
				a.free(b.loc, len(b.data))
				used -= int64(blockSize(len(b.data)))
				live[j] = live[len(live)-1]
				live = live[:len(live)-1]
				continue
			}
			n := size()
			b := block{loc: a.alloc(n), data: make([]byte, n)}
			for i := range b.data {
				b.data[i] = byte(rng.Uint32())
			}
			copy(a.view(b.loc, n), b.data)
			live = append(live, b)
			used += int64(blockSize(n))
			if a.used != used {
				t.Fatalf("step %d: used %d, want %d", step, a.used, used)
			}
		}
		for _, b := range live {
			if got := a.view(b.loc, len(b.data)); !bytes.Equal(got, b.data) {
				t.Fatalf("block at %#x changed", b.loc)
			}
			a.free(b.loc, len(b.data))
		}
		kept := 0
		for c := range a.classes {
			if k := a.classes[c]; k.pages > 1 || k.pages == 1 && len(a.pages[k.room]) > keepPage {
				t.Fatalf("class %d holds %d pages with no blocks", c, k.pages)
			}
			kept += int(a.classes[c].pages)
		}
		if a.used != 0 {
			t.Fatalf("used %d after freeing everything", a.used)
		}
		t.Logf("after freeing everything: %d bytes held in %d pages, each class's last", a.held, kept)
	}
}

// TestArenaFollowsSizeShift fills a shard's arena with 100-byte blocks,
// replaces them with 200-byte ones, and checks that the memory held does
// not add up both generations: pages of the drained class go back.
func TestArenaFollowsSizeShift(t *testing.T) {
	a := arena{mem: &offheap{}}
	const n = 50000
	locs := make([]uint64, n)
	for i := range locs {
		locs[i] = a.alloc(100)
	}
	first := a.held
	for i := range locs {
		a.free(locs[i], 100)
		locs[i] = a.alloc(200)
	}
	if limit := first * 5 / 2; a.held > limit {
		t.Fatalf("held %d bytes after the shift, %d before: the 100-byte class kept its pages", a.held, first)
	}
	if want := int64(n * blockSize(200)); a.used != want {
		t.Fatalf("used %d, want %d", a.used, want)
	}
}
