package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Child processes: every process the run starts (roost serve, the echo,
// redis-server) is a child that gets SIGTERM when this process dies, even by
// SIGKILL (the parent-death signal), and is stopped by stop: SIGTERM, then
// SIGKILL after childStopTimeout.
const (
	childStartTimeout = 30 * time.Second
	childStopTimeout  = 5 * time.Second
)

type child struct {
	name  string
	cmd   *exec.Cmd
	lines chan string   // stdout, line by line (dropped once nobody reads)
	done  chan struct{} // closed when it has exited
	err   error         // its exit status, once done is closed
	tail  *tailWriter   // the end of its stderr, for errors
}

// startChild starts exe with args. The goroutine that starts it stays on its
// OS thread until the child exits: the parent-death signal follows the
// thread, not the process.
func startChild(name, exe string, args []string, env []string) (*child, error) {
	c := &child{name: name, lines: make(chan string, 64), done: make(chan struct{}), tail: &tailWriter{max: 4096}}
	c.cmd = exec.Command(exe, args...)
	c.cmd.Env = env
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	c.cmd.Stderr = c.tail
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return c, nil
}

// waitLine waits for a stdout line starting with prefix and returns the rest.
func (c *child) waitLine(ctx context.Context, prefix string) (string, error) {
	timer := time.NewTimer(childStartTimeout)
	defer timer.Stop()
	for {
		select {
		case line := <-c.lines:
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return strings.TrimSpace(rest), nil
			}
		case <-c.done:
			return "", fmt.Errorf("%s exited before serving: %v: %s", c.name, c.err, c.tail)
		case <-timer.C:
			return "", fmt.Errorf("%s did not print %q within %s: %s", c.name, prefix, childStartTimeout, c.tail)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop ends the child: SIGTERM, then SIGKILL if it has not exited within
// childStopTimeout. It waits for the exit.
func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(childStopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	max int
	b   []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailWriter) String() string { return strings.TrimSpace(string(t.b)) }

// rssBytes is the resident set of process pid: VmRSS of /proc/pid/status.
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmRSS(f)
}

// parseVmRSS reads the VmRSS line ("VmRSS:	  123456 kB") of a
// /proc/PID/status.
func parseVmRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS line %q: %w", sc.Text(), err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line")
}
