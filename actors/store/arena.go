package store

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// arena keeps one shard's key and value bytes in pointer-free pages, so the
// collector has nothing to scan or mark per entry (docs/store.md, "Memory
// layout"). An entry's key and value are one block: the key's bytes, then
// the value's. A block has a size class: 8-byte steps up to 256 bytes,
// then 32 classes per doubling (steps of at most 1/32, about 1.5 % lost on
// average) up to maxClassSize. Each class carves its blocks from pages of
// its own and keeps its freed blocks on a free list (the next free block's
// location in the first 8 bytes), most recently freed first, so a shard
// under steady churn reuses its memory. A block larger than maxClassSize
// is a region of its own (a large value: mapped, or from the heap when
// under mapMin), returned to the system when it is freed.
//
// A block is addressed by a 64-bit location: page id (high half) and
// offset (low half); location 0 is "none" (page 0 is never used).
//
// Not safe for concurrent use: the shard's lock covers it. Bytes returned
// by view are valid until the next change of the arena.
type arena struct {
	mem     *offheap
	pages   [][]byte // by page id; nil for a free id
	freeIDs []uint32 // page ids to reuse
	classes [numClasses]sizeClass
	used    int64 // bytes of the blocks handed out, by class size (large blocks: their region)
}

// sizeClass is the state of one class in a shard.
type sizeClass struct {
	free  uint64 // location of the first free block; 0 = none
	page  uint32 // page being carved; 0 = none
	off   uint32 // next unused offset in it
	pages uint32 // pages allocated so far (page size grows with it)
}

// Block size classes.
const (
	maxClassSize = 32 << 10 // a larger block is a region of its own
	classStep    = 8        // block sizes are multiples of 8 bytes
)

var (
	classSizes []uint32                           // block size by class
	classOfLen [maxClassSize/classStep + 1]uint16 // class by (n+7)/8
)

// numClasses is len(classSizes) (a test checks it).
const numClasses = 256

func init() {
	for size := uint32(classStep); size <= maxClassSize; {
		classSizes = append(classSizes, size)
		size += max(classStep, uint32(1)<<(bits.Len32(size)-1)/32) // 1/32 of the power of two below
	}
	if len(classSizes) != numClasses {
		panic("store: numClasses is not the number of size classes")
	}
	c := 0
	for u := range classOfLen {
		for uint32(u*classStep) > classSizes[c] {
			c++
		}
		classOfLen[u] = uint16(c)
	}
}

// classOf returns the class of an n-byte block, and false when n is beyond
// the classes (a large block).
func classOf(n int) (int, bool) {
	if n > maxClassSize {
		return 0, false
	}
	return int(classOfLen[(n+classStep-1)/classStep]), true
}

// blockSize is the memory a block of n bytes takes.
func blockSize(n int) int {
	if c, ok := classOf(n); ok {
		return int(classSizes[c])
	}
	return n
}

// pageSize is the size of a class's next page: small at first, so a shard
// with few entries of a class stays small, doubling up to at least 1 MiB
// and 16 blocks (a mapped page is then large enough that a store of
// millions of entries needs only hundreds of mappings).
func pageSize(size, pages uint32) int {
	limit := max(1<<20, 16*size)
	n := max(4*size, 1<<10) << min(pages, 20)
	return int(min(n, limit))
}

// alloc returns the location of a new block of n > 0 bytes (not zeroed).
func (a *arena) alloc(n int) uint64 {
	c, ok := classOf(n)
	if !ok {
		id := a.addPage(a.mem.alloc(n))
		a.used += int64(n)
		return uint64(id) << 32
	}
	k := &a.classes[c]
	size := classSizes[c]
	a.used += int64(size)
	if loc := k.free; loc != 0 {
		k.free = binary.LittleEndian.Uint64(a.view(loc, 8))
		return loc
	}
	if k.page == 0 || int(k.off)+int(size) > len(a.pages[k.page]) {
		k.page, k.off = a.addPage(a.mem.alloc(pageSize(size, k.pages))), 0
		k.pages++
	}
	loc := uint64(k.page)<<32 | uint64(k.off)
	k.off += size
	return loc
}

// free gives back the block of n bytes at loc.
func (a *arena) free(loc uint64, n int) {
	c, ok := classOf(n)
	if !ok {
		id := uint32(loc >> 32)
		a.mem.free(a.pages[id])
		a.pages[id] = nil
		a.freeIDs = append(a.freeIDs, id)
		a.used -= int64(n)
		return
	}
	k := &a.classes[c]
	binary.LittleEndian.PutUint64(a.view(loc, 8), k.free)
	k.free = loc
	a.used -= int64(classSizes[c])
}

// addPage files page p under a page id and returns the id.
func (a *arena) addPage(p []byte) uint32 {
	if len(a.pages) == 0 {
		a.pages = append(a.pages, nil) // id 0 is "none"
	}
	if n := len(a.freeIDs); n > 0 {
		id := a.freeIDs[n-1]
		a.freeIDs = a.freeIDs[:n-1]
		a.pages[id] = p
		return id
	}
	a.pages = append(a.pages, p)
	return uint32(len(a.pages) - 1)
}

// view returns the n bytes at loc; they stay valid until the next change.
func (a *arena) view(loc uint64, n int) []byte {
	off := uint32(loc)
	return a.pages[loc>>32][off : off+uint32(n) : off+uint32(n)]
}

// viewString is view as a string.
func (a *arena) viewString(loc uint64, n int) string {
	b := a.view(loc, n)
	return unsafe.String(unsafe.SliceData(b), n)
}
