package store

import (
	"os"
	"syscall"
	"unsafe"
)

// residentMapped is how many bytes of the store's mapped memory are
// resident (mincore), or -1 if that cannot be told.
func (s *Store) residentMapped() int64 {
	page := os.Getpagesize()
	var n int64
	resident := func(p *byte, size int) bool {
		vec := make([]byte, (size+page-1)/page)
		if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(p)), uintptr(size), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			return false
		}
		for _, v := range vec {
			n += int64(v&1) * int64(page)
		}
		return true
	}
	ok := true
	pool := s.shards[0].sl.mem.pool
	if pool != nil {
		// The pool's blocks whole, the units no shard holds included: a
		// huge page is resident all of it or not at all.
		pool.regions(func(b []byte) { ok = ok && resident(&b[0], len(b)) })
	}
	for i := range s.shards {
		for p, size := range s.shards[i].sl.mem.mapped {
			if pool == nil || size > hugePageBytes || s.shards[i].sl.mem.own[p] { // a mapping of its own
				ok = ok && resident(p, size)
			}
		}
	}
	if !ok {
		return -1
	}
	return n
}
