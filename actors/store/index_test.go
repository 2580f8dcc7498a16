package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestIndexAgainstMap(t *testing.T) {
	// Small hash space on purpose: long probe runs, equal hashes, and
	// backward shifts across the table's wrap-around.
	for _, hashBits := range []uint{3, 8, 32} {
		t.Run(fmt.Sprintf("hash bits %d", hashBits), func(t *testing.T) {
			var sl slab
			var x index
			ref := map[string]uint32{}
			rng := rand.New(rand.NewPCG(uint64(hashBits), 3))
			hash := func(k string) uint32 { return fnv32(k) & (1<<hashBits - 1) }
			for op := range 20000 {
				k := fmt.Sprint(rng.IntN(500))
				h := hash(k)
				got := x.find(&sl, h, k)
				if got != ref[k] {
					t.Fatalf("op %d: find(%s) = %d, want %d", op, k, got, ref[k])
				}
				if rng.IntN(2) == 0 && got == 0 {
					i := sl.alloc()
					*sl.at(i) = entry{key: k, hash: h}
					x.insert(h, i)
					ref[k] = i
				} else if got != 0 {
					x.remove(h, got)
					sl.release(got)
					delete(ref, k)
				}
				if x.n != len(ref) {
					t.Fatalf("op %d: index holds %d, want %d", op, x.n, len(ref))
				}
			}
			for k, i := range ref {
				if got := x.find(&sl, hash(k), k); got != i {
					t.Fatalf("find(%s) = %d, want %d", k, got, i)
				}
			}
		})
	}
}

func TestSlabReusesSlots(t *testing.T) {
	var sl slab
	var ids []uint32
	for range 3 * chunkSize {
		ids = append(ids, sl.alloc())
	}
	if ids[0] != 1 || ids[len(ids)-1] != 3*chunkSize || sl.end() != 3*chunkSize+1 {
		t.Fatalf("first %d, last %d, end %d", ids[0], ids[len(ids)-1], sl.end())
	}
	sl.at(ids[5]).key = "x"
	sl.release(ids[5])
	sl.release(ids[9])
	if sl.used != 3*chunkSize-2 {
		t.Fatalf("used %d", sl.used)
	}
	if a, b := sl.alloc(), sl.alloc(); a != ids[9] || b != ids[5] || sl.at(b).key != "" {
		t.Fatalf("reuse gave %d, %d (key %q)", a, b, sl.at(b).key)
	}
	if sl.end() != 3*chunkSize+1 {
		t.Fatalf("reuse grew the slab to %d", sl.end())
	}
}
