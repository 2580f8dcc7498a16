//go:build !unix

package harness

import "time"

// processCPU: not measured on this system.
func processCPU() (time.Duration, bool) { return 0, false }
