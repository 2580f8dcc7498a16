package store

import "syscall"

// adviseHuge asks the kernel to back b with transparent huge pages where
// whole aligned 2 MiB pages fit (hugepool.go); where the kernel has them
// off, or cannot find a free huge page, b stays in 4 KiB pages.
func adviseHuge(b []byte) { _ = syscall.Madvise(b, syscall.MADV_HUGEPAGE) }
