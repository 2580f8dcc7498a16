//go:build !linux

package harness

import "os/exec"

// dieWithParent does nothing here: only Linux has a parent-death signal,
// and children outlive a harness killed with SIGKILL.
func dieWithParent(*exec.Cmd) {}
