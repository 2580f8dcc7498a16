//go:build unix

package store

import (
	"syscall"
	"unsafe"
)

// mapBytes maps n bytes of anonymous private memory, zeroed; pages become
// resident only when first written.
func mapBytes(n int) ([]byte, bool) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, false
	}
	return b, true
}

func unmapBytes(b []byte) { _ = syscall.Munmap(b) }

func unsafeBytes(p *byte, n int) []byte { return unsafe.Slice(p, n) }
