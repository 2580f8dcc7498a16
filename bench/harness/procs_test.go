package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/node"
)

// exeDir is the directory roostExe built into; TestMain removes it.
var exeDir string

// roostExe builds the roost binary once per test binary, for the nodes of
// process mode.
var roostExe = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "roost-harness-")
	if err != nil {
		return "", err
	}
	exeDir = dir
	exe := filepath.Join(dir, "roost")
	if out, err := exec.Command("go", "build", "-o", exe, "../../cmd/roost").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return exe, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if exeDir != "" {
		os.RemoveAll(exeDir)
	}
	os.Exit(code)
}

// procConfig is shortConfig with the nodes as processes of the roost binary.
func procConfig(t *testing.T, nodes int) Config {
	t.Helper()
	exe, err := roostExe()
	if err != nil {
		t.Fatal(err)
	}
	cfg := shortConfig()
	cfg.Keys = 200
	cfg.Procs, cfg.Exec, cfg.Nodes = true, exe, nodes
	return cfg
}

// childPIDs returns the processes whose parent is this one and that run exe
// serve, by their /proc entries.
func childPIDs(t *testing.T, exe string) []int {
	t.Helper()
	return childPIDsOf(t, exe, os.Getpid())
}

// childPIDsOf returns the processes whose parent is parent and that run exe
// serve.
func childPIDsOf(t *testing.T, exe string, parent int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc to find the node processes in: %v", err)
	}
	self := parent
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(self) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if args := strings.Split(string(cmdline), "\x00"); len(args) > 1 && args[0] == exe && args[1] == "serve" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestRunProcs runs the harness with its nodes as `roost serve` processes:
// every target measures without errors, the run says how the echo
// responder reached the node, and no process outlives the run.
func TestRunProcs(t *testing.T) {
	tests := []struct {
		nodes int
		edit  func(*Config)
	}{
		{1, func(c *Config) {}},
		{3, func(c *Config) { c.Workload, c.Path, c.Ack = WorkloadMixed, PathClient, "all" }},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d nodes", tt.nodes), func(t *testing.T) {
			if tt.nodes > 1 && testing.Short() {
				t.Skip("starts three processes and waits for them to cluster, about 4 s")
			}
			cfg := procConfig(t, tt.nodes)
			tt.edit(&cfg)
			var pids []int
			cfg.Progress = func(e Event) {
				if e.Phase == PhasePreload && e.Target == NameRoost { // the nodes serve, the run has them all
					pids = childPIDs(t, cfg.Exec)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			rep, err := Run(ctx, cfg)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if len(pids) != tt.nodes {
				t.Errorf("%d node processes while the run preloaded, want %d", len(pids), tt.nodes)
			}
			for _, pid := range pids {
				// A process not waited for would linger as a zombie and still take signal 0.
				if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
					t.Errorf("node process %d still there after the run: kill -0 = %v", pid, err)
				}
			}

			for _, name := range []string{NameEcho, NameRoost, NameKV} {
				checkRow(t, rep, name, 3)
			}
			if s := rep.Settings; !s.Procs || s.Nodes != tt.nodes {
				t.Errorf("settings say procs %t, %d nodes; want procs, %d", s.Procs, s.Nodes, tt.nodes)
			}
			if !strings.Contains(strings.Join(rep.Notes, "\n"), "echo: the responder is a client of bench1's process over loopback TCP") {
				t.Errorf("notes %q do not say how the echo responder reached the node", rep.Notes)
			}
			var table bytes.Buffer
			if err := rep.WriteTable(&table); err != nil || !strings.Contains(table.String(), " node process") {
				t.Errorf("table does not say the nodes were processes (%v):\n%s", err, table.String())
			}
		})
	}
}

// TestRunProcsFailures checks that a node process that cannot start or dies
// before serving fails the run, saying which and why, and is gone after it.
func TestRunProcsFailures(t *testing.T) {
	t.Run("no executable", func(t *testing.T) {
		cfg := procConfig(t, 1)
		cfg.Exec = filepath.Join(t.TempDir(), "no-roost")
		_, err := Run(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), "start node process bench1") {
			t.Fatalf("Run = %v, want a failure to start bench1", err)
		}
	})
	t.Run("dies before serving", func(t *testing.T) {
		cfg := procConfig(t, 1)
		cfg.Prefix = "not a prefix" // the harness passes it on; serve refuses it
		_, err := Run(context.Background(), cfg)
		if !errors.Is(err, errProcExited) || !strings.Contains(err.Error(), "bench1") || !strings.Contains(err.Error(), "--prefix") {
			t.Fatalf("Run = %v, want bench1's exit with serve's complaint about --prefix from its stderr", err)
		}
		if pids := childPIDs(t, cfg.Exec); len(pids) != 0 {
			t.Errorf("node processes %v left after a failed run", pids)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		cfg := procConfig(t, 1)
		cfg.Duration, cfg.Round = 20*time.Second, 20*time.Second
		ctx, cancel := context.WithCancel(context.Background())
		var pids []int
		cfg.Progress = func(e Event) {
			if e.Phase == PhaseWarmup && !e.End && pids == nil {
				pids = childPIDs(t, cfg.Exec)
				cancel()
			}
		}
		start := time.Now()
		if _, err := Run(ctx, cfg); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("an interrupted run took %s to return", d)
		}
		if len(pids) != 1 {
			t.Fatalf("node processes %v during the run, want one", pids)
		}
		if err := syscall.Kill(pids[0], 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("node process %d still there after an interrupted run: kill -0 = %v", pids[0], err)
		}
	})
}

// TestFormedStatus checks when a node's status counts as formed.
func TestFormedStatus(t *testing.T) {
	status := func(servers int, primaryOf []int, parts ...replicator.PartitionStatus) node.Status {
		var st node.Status
		for i := range servers {
			st.Cluster.Servers = append(st.Cluster.Servers, fmt.Sprintf("bench%d", i+1))
		}
		st.Cluster.PrimaryOf, st.Cluster.Replication = primaryOf, parts
		return st
	}
	primary := func(p int, ready bool) replicator.PartitionStatus {
		return replicator.PartitionStatus{Partition: p, Role: "primary", Ready: ready}
	}
	replica := replicator.PartitionStatus{Partition: 2, Role: "replica", Ready: true}
	tests := []struct {
		name string
		st   node.Status
		want string // in the error; "" = formed
	}{
		{"formed", status(3, []int{0, 1}, primary(0, true), primary(1, true), replica), ""},
		{"too few servers", status(2, []int{0, 1}, primary(0, true), primary(1, true)), "routes over 2 servers"},
		{"primary not ready", status(3, []int{0, 1}, primary(0, true), primary(1, false)), "partition 1, not ready"},
		{"primary not taken on yet", status(3, []int{0, 2}, primary(0, true), replica), "partition 2, not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := formedStatus(tt.st, 3)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("formedStatus = %v, want %q", err, tt.want)
			}
		})
	}
}

// running reports whether process pid exists and is not a zombie (a child
// whose parent died waits as one until something reaps it).
func running(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// TestProcsDieWithHarness: the node processes of a harness killed with
// SIGKILL, which runs no cleanup, stop too (Linux's parent-death signal).
func TestProcsDieWithHarness(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the parent-death signal is Linux's")
	}
	exe, err := roostExe()
	if err != nil {
		t.Fatal(err)
	}
	bench := exec.Command(exe, "bench", "--nodes", "1", "--procs", "--keys", "200", "--duration", "60s", "--round", "1s")
	progress, err := bench.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bench.Process.Kill(); _ = bench.Wait() }()
	// Once it preloads, its node has printed its addresses: killed earlier,
	// the node would die of writing them to the gone harness's pipe, and
	// prove nothing.
	preloading := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(progress)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "preloading") {
				close(preloading)
				break
			}
		}
		_, _ = io.Copy(io.Discard, progress)
	}()
	select {
	case <-preloading:
	case <-time.After(20 * time.Second):
		t.Fatal("the harness did not start preloading within 20s")
	}
	pids := childPIDsOf(t, exe, bench.Process.Pid)
	if len(pids) != 1 {
		t.Fatalf("%d node processes while the harness preloads, want 1", len(pids))
	}
	if err := bench.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = bench.Wait()
	for deadline := time.Now().Add(10 * time.Second); running(pids[0]); {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pids[0], syscall.SIGKILL)
			t.Fatalf("node process %d still runs 10s after its harness was killed", pids[0])
		}
		time.Sleep(20 * time.Millisecond) // polling for the child to stop
	}
}
