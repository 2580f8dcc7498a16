//go:build unix

package harness

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used so far, user and
// system; ok is false when it cannot be read.
func processCPU() (_ time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
