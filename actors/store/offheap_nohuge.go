//go:build !linux

package store

// adviseHuge: transparent huge pages are Linux's; elsewhere the blocks are
// mapped in the system's pages as they come.
func adviseHuge([]byte) {}
