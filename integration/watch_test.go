package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/roostkv/roost/internal/testkit"
)

// watcher is a running `roost watch` process and the lines it prints.
type watcher struct {
	cmd    *exec.Cmd
	lines  chan string
	done   chan error
	stderr testkit.LogBuffer
}

func (w *watcher) errText() string { return w.stderr.String() }

// startWatch runs the real binary's `roost watch args...` and waits until
// it says it is watching.
func startWatch(t *testing.T, args ...string) *watcher {
	t.Helper()
	bin, err := roostBin()
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{cmd: exec.Command(bin, append([]string{"watch"}, args...)...), lines: make(chan string, 100), done: make(chan error, 1)}
	w.cmd.Stderr = &w.stderr
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		w.done <- w.cmd.Wait()
	}()
	t.Cleanup(func() {
		if w.cmd.ProcessState == nil {
			_ = w.cmd.Process.Kill()
		}
	})
	eventually(t, 10*time.Second, func() error {
		if !strings.Contains(w.errText(), "watching") {
			return fmt.Errorf("roost watch has not started: %q", w.errText())
		}
		return nil
	})
	return w
}

// next returns the next line printed, failing after a while without one.
func (w *watcher) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-w.lines:
		return l
	case <-time.After(5 * time.Second):
		t.Fatalf("roost watch printed nothing more; stderr: %s", w.errText())
		return ""
	}
}

// interrupt sends SIGINT and expects exit code 0 soon.
func (w *watcher) interrupt(t *testing.T) {
	t.Helper()
	if err := w.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("roost watch after SIGINT: %v; stderr: %s", err, w.errText())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("roost watch did not exit within 5s of SIGINT")
	}
}

func TestWatchPrintsChanges(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, nil)
	a := keyLedBy(t, nodes[0], "wt/a", nodes[2].Name()) // announced by n3
	b := keyLedBy(t, nodes[0], "wt/b", nodes[0].Name()) // announced by n1, the node the watchers use
	other := keyLedBy(t, nodes[0], "other/", nodes[1].Name())
	absent := keyLedBy(t, nodes[0], "wt/absent", nodes[1].Name())
	sentinel := keyLedBy(t, nodes[0], "wt/zz", nodes[1].Name()) // same announcer as other and absent: it comes after them
	prefixWatch := startWatch(t, "wt/*", "--server", nodes[0].ClientURL())
	exactWatch := startWatch(t, a, "--json", "--server", nodes[0].ClientURL())
	nc2, nc3 := connect(t, nodes[1]), connect(t, nodes[2])

	// Changes announced by n3 reach the watchers once the route knows their
	// interest: write until the first one shows.
	eventually(t, 10*time.Second, func() error {
		wantCode(t, "set probe", request(t, nc2, "roost.set."+a, []byte("probe")), 200)
		select {
		case <-prefixWatch.lines:
			return nil
		case <-time.After(100 * time.Millisecond):
			return fmt.Errorf("no line yet")
		}
	})
	wantCode(t, "clear probe", request(t, nc2, "roost.del."+a, nil), 200)
	// Drain what the probes printed, up to the delete that ends them.
	for _, w := range []*watcher{prefixWatch, exactWatch} {
		for l := w.next(t); !strings.HasPrefix(l, "del ") && !strings.Contains(l, `"del"`); l = w.next(t) {
		}
	}

	setA := request(t, nc2, "roost.set."+a, []byte("1"))
	setB := request(t, nc3, "roost.set."+b, []byte("2"))
	wantCode(t, "set other", request(t, nc2, "roost.set."+other, []byte("x")), 200)
	delA := request(t, nc3, "roost.del."+a, nil)
	wantCode(t, "delete of an absent key", request(t, nc2, "roost.del."+absent, nil), 200)
	setSentinel := request(t, nc2, "roost.set."+sentinel, []byte("end"))

	want := []string{
		fmt.Sprintf("set %s version %d", a, setA.version(t)),
		fmt.Sprintf("set %s version %d", b, setB.version(t)),
		fmt.Sprintf("del %s version %d", a, delA.version(t)),
		fmt.Sprintf("set %s version %d", sentinel, setSentinel.version(t)),
	}
	var got []string
	for len(got) < len(want) {
		got = append(got, prefixWatch.next(t))
	}
	if i, j := slices.Index(got, want[0]), slices.Index(got, want[2]); i < 0 || j < i {
		t.Fatalf("watch printed %q\nwant (a's set before its delete) %q", got, want)
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))) {
		t.Fatalf("watch printed %q\nwant %q (in any order across keys)", got, want)
	}

	// The exact watch saw a's set and delete only, as JSON.
	for _, w := range []map[string]any{
		{"op": "set", "key": a, "version": float64(setA.version(t))},
		{"op": "del", "key": a, "version": float64(delA.version(t))},
	} {
		line := exactWatch.next(t)
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil || fmt.Sprint(obj) != fmt.Sprint(w) {
			t.Fatalf("--json printed %q, want %v", line, w)
		}
	}
	select {
	case l := <-exactWatch.lines:
		t.Fatalf("the watch of %s printed a change of another key: %q", a, l)
	default:
	}

	prefixWatch.interrupt(t)
	exactWatch.interrupt(t)
}
