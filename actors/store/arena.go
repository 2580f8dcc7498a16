package store

import (
	"encoding/binary"
	"math/bits"
	"unsafe"
)

// arena keeps one shard's key and value bytes in pointer-free pages, so the
// collector has nothing to scan or mark per entry (docs/store.md, "Memory
// layout"). An entry's key and value are one block: the key's bytes, then
// the value's.
//
// A block of up to maxClassSize bytes has a size class: 8-byte steps up to
// 256 bytes, then 32 classes per doubling (steps of 1/32: about 1.5 % lost
// on average). A class carves its blocks from pages of its own, as Go's
// allocator does from spans: each page keeps its own free list (the next
// free block's offset in a freed block's first 4 bytes) and a count of the
// blocks in use, and the class keeps a list of its pages that have room.
// An allocation takes the first such page's most recently freed block, or
// carves a new one; a page whose last block is freed goes back to the
// system (or the Go heap), so memory follows the entries when their sizes
// change; but a class keeps its last page if it is at most keepPage bytes,
// so that one entry going and coming does not allocate each time. A class's pages grow as it fills (pageSize), so a class with few
// entries holds little, and one with many needs few pages.
//
// A larger block is a page of its own (mapped from mapMin up, else from
// the heap): a large value, returned to the system when it is freed.
//
// A block is addressed by a 64-bit location: page id (high half) and
// offset (low half); location 0 is "none" (page id 0 is never used).
// Not safe for concurrent use: the shard's lock covers it. Bytes returned
// by view are valid until the next change of the arena.
type arena struct {
	mem     *offheap
	pages   [][]byte   // by page id; nil for a free id
	info    []pageInfo // by page id
	freeIDs []uint32   // page ids to reuse
	classes [numClasses]sizeClass
	used    int64 // bytes of the blocks handed out, by class size (large blocks: their length)
	held    int64 // bytes of the pages held
}

// sizeClass is the state of one class in a shard.
type sizeClass struct {
	room  uint32 // first page with room, linked through pageInfo.next; 0 = none
	pages uint32 // pages held
}

// pageInfo is one page's bookkeeping.
type pageInfo struct {
	free       uint32 // offset+1 of the first free block; 0 = none
	off        uint32 // offset of the first block never handed out
	live       uint32 // blocks in use
	prev, next uint32 // the class's list of pages with room
	class      uint16
	listed     bool // in the class's list of pages with room
}

// Block size classes.
const (
	maxClassSize = 32 << 10 // a larger block is a page of its own
	classStep    = 8        // block sizes are multiples of 8 bytes
	numClasses   = 256      // len(classSizes), checked at init
	bigClass     = numClasses
	keepPage     = 4 << 10 // an empty page this small stays with its class if it is the class's last
)

var (
	classSizes []uint32                           // block size by class
	classOfLen [maxClassSize/classStep + 1]uint16 // class by (n+7)/8
)

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

// pageSize is the size of a class's next page when it holds pages already:
// 1, 2, 4 … 16 blocks, and 1, 2, 4 … 64 KiB (mapMin: a class with many
// entries lives off the Go heap), whichever holds more. A page on the heap
// is whole blocks; a mapped one is whole 4 KiB pages of the system (a
// partly used system page would be resident all the same), its tail of
// less than a block unused.
func pageSize(size, pages uint32) int {
	n := max(min(uint32(1)<<min(pages, 4), 16)*size, min(uint32(mapMin), uint32(1<<10)<<min(pages, 6)))
	if n >= mapMin {
		return int((n + 4095) &^ 4095)
	}
	return int((n + size - 1) / size * size)
}

// alloc returns the location of a new block of n > 0 bytes (not zeroed).
func (a *arena) alloc(n int) uint64 {
	c, ok := classOf(n)
	if !ok {
		id := a.addPage(a.mem.alloc(n), bigClass)
		a.info[id].live = 1
		a.used += int64(n)
		return uint64(id) << 32
	}
	k := &a.classes[c]
	size := classSizes[c]
	if k.room == 0 {
		id := a.addPage(a.mem.alloc(pageSize(size, k.pages)), uint16(c))
		k.pages++
		a.link(k, id)
	}
	id := k.room
	p := &a.info[id]
	var off uint32
	if p.free != 0 {
		off = p.free - 1
		p.free = binary.LittleEndian.Uint32(a.pages[id][off:])
	} else {
		off = p.off
		p.off += size
	}
	p.live++
	if p.free == 0 && int(p.off+size) > len(a.pages[id]) { // full
		a.unlink(k, id)
	}
	a.used += int64(size)
	return uint64(id)<<32 | uint64(off)
}

// free gives back the block of n bytes at loc.
func (a *arena) free(loc uint64, n int) {
	id, off := uint32(loc>>32), uint32(loc)
	c, ok := classOf(n)
	if !ok {
		a.used -= int64(n)
		a.dropPage(id)
		return
	}
	k := &a.classes[c]
	p := &a.info[id]
	a.used -= int64(classSizes[c])
	p.live--
	if p.live == 0 && (k.pages > 1 || len(a.pages[id]) > keepPage) {
		if p.listed {
			a.unlink(k, id)
		}
		k.pages--
		a.dropPage(id)
		return
	}
	binary.LittleEndian.PutUint32(a.pages[id][off:], p.free)
	p.free = off + 1
	if !p.listed {
		a.link(k, id)
	}
}

// link puts page id first in class k's list of pages with room.
func (a *arena) link(k *sizeClass, id uint32) {
	p := &a.info[id]
	p.prev, p.next, p.listed = 0, k.room, true
	if k.room != 0 {
		a.info[k.room].prev = id
	}
	k.room = id
}

// unlink takes page id out of class k's list of pages with room.
func (a *arena) unlink(k *sizeClass, id uint32) {
	p := &a.info[id]
	if p.prev != 0 {
		a.info[p.prev].next = p.next
	} else {
		k.room = p.next
	}
	if p.next != 0 {
		a.info[p.next].prev = p.prev
	}
	p.prev, p.next, p.listed = 0, 0, false
}

// addPage files page b, of the given class, under a page id and returns the id.
func (a *arena) addPage(b []byte, class uint16) uint32 {
	if len(a.pages) == 0 {
		a.pages, a.info = append(a.pages, nil), append(a.info, pageInfo{}) // id 0 is "none"
	}
	a.held += int64(len(b))
	var id uint32
	if n := len(a.freeIDs); n > 0 {
		id = a.freeIDs[n-1]
		a.freeIDs = a.freeIDs[:n-1]
		a.pages[id] = b
	} else {
		a.pages, a.info = append(a.pages, b), append(a.info, pageInfo{})
		id = uint32(len(a.pages) - 1)
	}
	a.info[id] = pageInfo{class: class}
	return id
}

// dropPage gives page id's memory back and frees the id.
func (a *arena) dropPage(id uint32) {
	a.held -= int64(len(a.pages[id]))
	a.mem.free(a.pages[id])
	a.pages[id], a.info[id] = nil, pageInfo{}
	a.freeIDs = append(a.freeIDs, id)
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
