//go:build !unix

package store

import "unsafe"

// Without mmap, everything comes from the Go heap: still pointer-free, so
// the collector does not scan it, but it counts in the heap's pacing.
func mapBytes(n int) ([]byte, bool) { return nil, false }

func unmapBytes([]byte) {}

func unsafeBytes(p *byte, n int) []byte { return unsafe.Slice(p, n) }
