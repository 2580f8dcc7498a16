package store

import (
	"runtime"
	"sync/atomic"
)

// Memory the garbage collector never sees. Everything a shard keeps per
// entry is pointer-free: the entry records, the index, the ghost and the
// key and value bytes (arena.go). Large blocks of it are mapped from the
// operating system (offheap_unix.go) instead of allocated on the Go heap,
// for two reasons measured in docs/store.md ("Memory layout"): the
// collector has nothing of the store's to mark, and the heap it paces
// itself by is only the process's transient garbage, so write traffic
// does not let the heap grow to twice the stored data (GOGC=100).
//
// Allocations below mapMin come from the Go heap as []byte (no pointers, so
// the collector never scans them): a small store, such as most tests make,
// maps nothing.

// mapMin is the least size that is mapped rather than allocated on the heap.
const mapMin = 64 << 10

// offheap hands out one shard's pointer-free memory and remembers the
// mapped regions, to unmap them when the store is collected (see
// unmapOnCollect). Not safe for concurrent use: the shard's lock covers it.
type offheap struct {
	mapped map[*byte]int // the start and length of every live mapped region
	bytes  atomic.Int64  // bytes mapped now (atomic: tests read it while a cleanup may run)
}

// alloc returns n zeroed bytes. A nil offheap allocates on the heap.
func (m *offheap) alloc(n int) []byte {
	if n < mapMin || m == nil {
		return make([]byte, n)
	}
	b, ok := mapBytes(n)
	if !ok {
		return make([]byte, n)
	}
	if m.mapped == nil {
		m.mapped = map[*byte]int{}
	}
	m.mapped[&b[0]] = len(b)
	m.bytes.Add(int64(len(b)))
	return b
}

// free gives back b, a whole slice that alloc returned; b must not be used
// afterwards. Heap memory is left to the collector.
func (m *offheap) free(b []byte) {
	if len(b) == 0 || m == nil {
		return
	}
	b = b[:cap(b)]
	if n, ok := m.mapped[&b[0]]; ok {
		delete(m.mapped, &b[0])
		m.bytes.Add(-int64(n))
		unmapBytes(b[:n])
	}
}

// release unmaps every region still mapped.
func (m *offheap) release() {
	for p, n := range m.mapped {
		unmapBytes(unsafeBytes(p, n))
	}
	m.mapped = nil
	m.bytes.Store(0)
}

// unmapOnCollect unmaps the shards' memory once the shards can no longer be
// reached. The cleanup is attached to the shards' array, which every
// operation holds while it runs (it works through a *shard into it), and its
// argument, the list of offheap trackers, does not point back at it.
func unmapOnCollect(shards []shard) {
	mems := make([]*offheap, len(shards))
	for i := range shards {
		mems[i] = shards[i].sl.mem
	}
	runtime.AddCleanup(&shards[0], func(ms []*offheap) {
		for _, m := range ms {
			m.release()
		}
	}, mems)
}

// OffHeapBytes is the memory the store has mapped outside the Go heap now
// (resident or not): what the Go runtime's memory limit does not see. A
// process that sets a soft memory limit for its heap should leave this
// much out of it.
func (s *Store) OffHeapBytes() int64 {
	var n int64
	for i := range s.shards {
		n += s.shards[i].sl.mem.bytes.Load()
	}
	return n
}
