package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"
)

func TestIndexAgainstMap(t *testing.T) {
	// Small hash spaces on purpose. With the bits at the top, keys share a few
	// home slots (long probe runs, Robin Hood swaps, long backward shifts)
	// and all have tag 0 (every probe at the right distance goes to the
	// slab). With them at the bottom, every key has home slot 0 and the tags
	// differ.
	tests := []struct {
		name string
		bits uint
		top  bool
	}{
		{"3 high bits", 3, true},
		{"5 high bits", 5, true},
		{"8 low bits", 8, false},
		{"32 bits", 32, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sl slab
			var x index
			ref := map[string]uint32{}
			rng := rand.New(rand.NewPCG(uint64(tt.bits), 3))
			hash := func(k string) uint32 {
				h := fnv32(k) >> (32 - tt.bits)
				if tt.top {
					return h << (32 - tt.bits)
				}
				return h
			}
			for op := range 20000 {
				k := fmt.Sprint(rng.IntN(500))
				h := hash(k)
				got := x.find(&sl, h, k)
				if got != ref[k] {
					t.Fatalf("op %d: find(%s) = %d, want %d", op, k, got, ref[k])
				}
				if rng.IntN(2) == 0 && got == 0 {
					i := sl.alloc()
					*sl.at(i) = entry{hash: h}
					sl.setKey(sl.at(i), k, nil)
					x.insert(&sl, h, i) // grows from the slab's queued entries, so queue i afterwards
					sl.at(i).queue = queueMain
					ref[k] = i
				} else if got != 0 {
					x.remove(h, got)
					sl.release(got)
					delete(ref, k)
				}
				if x.n != len(ref) {
					t.Fatalf("op %d: index holds %d, want %d", op, x.n, len(ref))
				}
				if op%97 == 0 {
					if err := x.check(&sl); err != nil {
						t.Fatalf("op %d: %v", op, err)
					}
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
	sl.setKey(sl.at(ids[5]), "x", nil)
	sl.release(ids[5])
	sl.release(ids[9])
	if sl.used != 3*chunkSize-2 {
		t.Fatalf("used %d", sl.used)
	}
	if a, b := sl.alloc(), sl.alloc(); a != ids[9] || b != ids[5] || sl.key(sl.at(b)) != "" {
		t.Fatalf("reuse gave %d, %d (key %q)", a, b, sl.key(sl.at(b)))
	}
	if sl.end() != 3*chunkSize+1 {
		t.Fatalf("reuse grew the slab to %d", sl.end())
	}
}

func TestSlabChunksAreMapped(t *testing.T) {
	// Records are 56 bytes, packed; a full chunk is mapped outside the Go
	// heap, page-aligned, and its records follow one another.
	sl := newSlab(&offheap{})
	defer sl.mem.release()
	for range 3 * chunkSize {
		sl.alloc()
	}
	if c := cap(sl.chunks[0]); c != chunkSize {
		t.Fatalf("first chunk grew to %d records, want %d", c, chunkSize)
	}
	for n, c := range sl.chunks {
		if p := uintptr(unsafe.Pointer(&c[0])); p%4096 != 0 {
			t.Fatalf("chunk %d at %#x, not on a page boundary", n, p)
		}
	}
	if got, want := sl.mem.bytes.Load(), int64(len(sl.chunks)*chunkSize*entryBytes); got != want {
		t.Fatalf("%d bytes mapped for %d chunks, want %d", got, len(sl.chunks), want)
	}
	for i := uint32(2); i < sl.end(); i++ {
		if d := uintptr(unsafe.Pointer(sl.at(i))) - uintptr(unsafe.Pointer(sl.at(i-1))); i&chunkMask != 0 && d != uintptr(entryBytes) {
			t.Fatalf("record %d is %d bytes after the one before", i, d)
		}
	}
}

func TestPackLoc(t *testing.T) {
	tests := []struct {
		name string
		loc  uint64
		want uint32 // 0: not packed
	}{
		{"first block of page 1", 1 << 32, 1 << 16},
		{"an offset", 7<<32 | 120*5, 7<<16 | 75},
		{"the last page id and offset that fit", 0xffff<<32 | (8<<16 - 8), 0xffffffff},
		{"page id 65 536", 1 << 48, 0},
		{"offset 512 KiB", 1<<32 | 8<<16, 0},
		{"an offset off the 8-byte grid", 1<<32 | 12, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := packLoc(tt.loc)
			if got != tt.want {
				t.Fatalf("packLoc(%#x) = %#x, want %#x", tt.loc, got, tt.want)
			}
			if got != 0 && unpackLoc(got) != tt.loc {
				t.Fatalf("unpackLoc(%#x) = %#x, want %#x", got, unpackLoc(got), tt.loc)
			}
		})
	}
}

func TestFindWithoutPackedLocation(t *testing.T) {
	// A slot whose location did not fit in 32 bits holds 0, and the lookup
	// reads the location from the record: clear every slot's location and
	// every key must still be found, and no other.
	sl := newSlab(&offheap{})
	defer sl.mem.release()
	var x index
	hash := func(k string) uint32 { return fnv32(k) & 0xff0000ff } // few home slots, few tags: many false tag matches
	ref := map[string]uint32{}
	for n := range 3000 {
		k := fmt.Sprint("key-", n)
		i := sl.alloc()
		*sl.at(i) = entry{hash: hash(k)}
		sl.setKey(sl.at(i), k, []byte("value"))
		x.insert(&sl, hash(k), i)
		sl.at(i).queue = queueMain
		ref[k] = i
	}
	packed := 0
	for p := range len(x.b) / slotBytes {
		if x.loc(p) != 0 {
			packed++
			c, i := x.load(p)
			x.store(p, c, i, 0)
		}
	}
	if packed != len(ref) {
		t.Fatalf("%d slots had a packed location, want %d", packed, len(ref))
	}
	for k, i := range ref {
		if got := x.find(&sl, hash(k), k); got != i {
			t.Fatalf("find(%s) = %d, want %d", k, got, i)
		}
		if got := x.find(&sl, hash(k), k+"x"); got != 0 {
			t.Fatalf("find(%sx) = %d, want 0", k, got)
		}
	}
}
