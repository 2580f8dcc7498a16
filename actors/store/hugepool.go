package store

import (
	"sync"
	"unsafe"
)

// A store's mapped memory comes in huge pages (issue 15, BENCHMARKS.md
// "textget"). A lookup touches four places at random — the shard's index
// slot, the entry's record, its key and value in the arena, the shard —
// and with the operating system's 4 KiB pages each is a TLB miss of its
// own once the store outgrows the TLB's reach (a few MiB), in a virtual
// machine a two-dimensional page walk; where the kernel isolates its page
// tables without PCID, every system call flushes the TLB besides, so a
// node's get, which comes after the NATS work's socket reads and writes,
// pays those walks on every lookup. Mapped in 2 MiB pages, the store's
// memory needs one TLB entry per 2 MiB: BenchmarkStoreGetAfterSyscall
// measures the difference.
//
// Transparent huge pages are, on most distributions, given only to memory
// that asks for them (madvise mode), and only in whole 2 MiB pages aligned
// to 2 MiB. The store's mapped allocations are 64 KiB to 1 MiB (arena
// pages, slab chunks, index tables): too small to be huge pages each. So
// the store maps aligned blocks of 2 MiB, asks for huge pages there
// (adviseHuge), and hands out runs of 4 KiB units of them to its shards; an
// allocation over 2 MiB is a mapping of its own, advised the same way.
// Freed units are reused, first fit, zeroed again when handed out; a block
// whose units are all free is unmapped, but for one kept as a spare
// against a free and an alloc at the edge of a block mapping and unmapping
// in turn.

const (
	hugePageBytes = 2 << 20                    // a transparent huge page on x86-64 and arm64 (4 KiB base pages)
	unitBytes     = 4 << 10                    // what a block hands out: whole system pages
	blockUnits    = hugePageBytes / unitBytes  // 512
	blockWords    = blockUnits / 64            // words of a block's bitmaps
	unitShift     = 12                         // log2(unitBytes)
	hugeMask      = uintptr(hugePageBytes - 1) // an address's offset in its huge page
	unitsPerWord  = 64                         // bits of a bitmap word
)

// hugePool hands out a store's mapped memory from 2 MiB blocks. Its shards
// share it (each under its own lock), so it has a lock of its own; it is
// taken only when a shard maps or frees memory (an arena page, a slab
// chunk, an index), not on reads or on most writes.
type hugePool struct {
	mu     sync.Mutex
	blocks []*hugeBlock           // in the order they were mapped: first fit
	byBase map[uintptr]*hugeBlock // by the block's address
	spare  *hugeBlock             // an empty block kept mapped; nil = none
	mapped int64                  // bytes mapped: blocks, and the allocations over a block
}

// hugeBlock is one 2 MiB block of a hugePool.
type hugeBlock struct {
	mem   []byte
	used  [blockWords]uint64 // bit u: unit u is handed out
	dirty [blockWords]uint64 // bit u: unit u was handed out before and may hold bytes (zero it before it goes out again)
	free  int                // units not handed out
}

// alloc returns n zeroed bytes (n > 0) with cap n, or false when the
// system maps nothing.
func (p *hugePool) alloc(n int) ([]byte, bool) {
	if n > hugePageBytes {
		b, ok := mapBytes(n)
		if ok {
			adviseHuge(b)
			p.mu.Lock()
			p.mapped += int64(len(b))
			p.mu.Unlock()
		}
		return b, ok
	}
	k := (n + unitBytes - 1) >> unitShift
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, blk := range p.blocks {
		if blk.free < k {
			continue
		}
		if u, ok := blk.fit(k); ok {
			if blk == p.spare {
				p.spare = nil
			}
			return blk.take(u, k, n), true
		}
	}
	blk, ok := p.mapBlock()
	if !ok {
		return nil, false
	}
	return blk.take(0, k, n), true
}

// free gives back b, a whole slice that alloc returned.
func (p *hugePool) free(b []byte) {
	if len(b) > hugePageBytes {
		unmapBytes(b)
		p.mu.Lock()
		p.mapped -= int64(len(b))
		p.mu.Unlock()
		return
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	p.mu.Lock()
	defer p.mu.Unlock()
	blk := p.byBase[addr&^hugeMask]
	if blk == nil {
		panic("store: freeing memory no block of the pool handed out")
	}
	blk.give(int(addr&hugeMask)>>unitShift, (len(b)+unitBytes-1)>>unitShift)
	if blk.free < blockUnits {
		return
	}
	if p.spare == nil {
		p.spare = blk
		return
	}
	p.unmapBlock(blk)
}

// drain unmaps the spare block; with every allocation given back (the
// store is gone), the pool then holds nothing mapped.
func (p *hugePool) drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.spare != nil {
		p.unmapBlock(p.spare)
		p.spare = nil
	}
}

// mappedBytes is what the pool has mapped now, spare and unused units
// included.
func (p *hugePool) mappedBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mapped
}

// regions calls fn with every region the pool has mapped in blocks.
func (p *hugePool) regions(fn func(b []byte)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, blk := range p.blocks {
		fn(blk.mem)
	}
}

// mapBlock maps a new block, 2 MiB aligned: it maps twice that and unmaps
// what lies outside the aligned 2 MiB.
func (p *hugePool) mapBlock() (*hugeBlock, bool) {
	b, ok := mapBytes(2 * hugePageBytes)
	if !ok {
		return nil, false
	}
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(b))) & hugeMask)
	if off > 0 {
		unmapBytes(b[:off])
	}
	if end := off + hugePageBytes; end < len(b) {
		unmapBytes(b[end:])
	}
	b = b[off : off+hugePageBytes : off+hugePageBytes]
	adviseHuge(b)
	blk := &hugeBlock{mem: b, free: blockUnits}
	if p.byBase == nil {
		p.byBase = map[uintptr]*hugeBlock{}
	}
	p.byBase[uintptr(unsafe.Pointer(unsafe.SliceData(b)))] = blk
	p.blocks = append(p.blocks, blk)
	p.mapped += hugePageBytes
	return blk, true
}

// unmapBlock unmaps blk, which holds nothing handed out.
func (p *hugePool) unmapBlock(blk *hugeBlock) {
	delete(p.byBase, uintptr(unsafe.Pointer(unsafe.SliceData(blk.mem))))
	for i, b := range p.blocks {
		if b == blk {
			p.blocks = append(p.blocks[:i], p.blocks[i+1:]...)
			break
		}
	}
	unmapBytes(blk.mem)
	p.mapped -= hugePageBytes
}

// fit returns the first unit of the first run of k free units.
func (blk *hugeBlock) fit(k int) (int, bool) {
	run := 0
	for u := 0; u < blockUnits; {
		w := blk.used[u/unitsPerWord]
		if u%unitsPerWord == 0 && w == ^uint64(0) { // a word of used units
			run = 0
			u += unitsPerWord
			continue
		}
		if w>>(u%unitsPerWord)&1 != 0 {
			run = 0
		} else if run++; run == k {
			return u - k + 1, true
		}
		u++
	}
	return 0, false
}

// take hands out units u..u+k-1 as n bytes, zeroed.
func (blk *hugeBlock) take(u, k, n int) []byte {
	b := blk.mem[u*unitBytes : u*unitBytes+n : u*unitBytes+n]
	dirty := false
	for i := u; i < u+k; i++ {
		w, bit := i/unitsPerWord, uint64(1)<<(i%unitsPerWord)
		blk.used[w] |= bit
		if blk.dirty[w]&bit != 0 {
			dirty = true
			blk.dirty[w] &^= bit
		}
	}
	if dirty {
		clear(b)
	}
	blk.free -= k
	return b
}

// give takes back units u..u+k-1.
func (blk *hugeBlock) give(u, k int) {
	for i := u; i < u+k; i++ {
		w, bit := i/unitsPerWord, uint64(1)<<(i%unitsPerWord)
		if blk.used[w]&bit == 0 {
			panic("store: freeing a unit twice")
		}
		blk.used[w] &^= bit
		blk.dirty[w] |= bit
	}
	blk.free += k
}
