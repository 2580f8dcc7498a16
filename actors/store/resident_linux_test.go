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
	for i := range s.shards {
		for p, size := range s.shards[i].sl.mem.mapped {
			vec := make([]byte, (size+page-1)/page)
			if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(p)), uintptr(size), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
				return -1
			}
			for _, v := range vec {
				n += int64(v&1) * int64(page)
			}
		}
	}
	return n
}
