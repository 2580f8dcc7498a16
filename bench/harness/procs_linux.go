package harness

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel send the child SIGTERM when the thread
// that started it ends, as it does when this process is killed, even with
// SIGKILL. startProc starts the child from a goroutine locked to its thread
// until the child exits, so that the Go runtime never retires that thread
// earlier.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
