package integration

// A history of ack=all writes and reads against a cluster, and the checks
// the fault tests make of it: no acknowledged write lost, no read below a
// version acknowledged before it began.

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Timeouts of the fault tests' requests.
const (
	faultWriteTimeout = 6 * time.Second // over the 5 s a node promises a 503 in; a timeout is an unknown outcome
	faultReadTimeout  = 3 * time.Second
)

// writeRec is one set of a key with Roost-Ack: all.
type writeRec struct {
	value      string
	start, end time.Duration // since the history began; end is when the answer came
	acked      bool          // every live owner applied it (a 200)
	version    uint64        // Roost-Version of the answer, when acked
	failure    string        // why not acked: its outcome is unknown
}

// readRec is one get of a key.
type readRec struct {
	key        string
	start, end time.Duration
	found      bool
	version    uint64
	value      string
	via        string // the server the client was connected to
}

// history records every write and read of a run, from any goroutine.
type history struct {
	begin time.Time

	mu     sync.Mutex
	writes map[string][]writeRec // by key, in the order they were answered
	reads  []readRec
	fails  map[string]int // failed requests by reason, for the log
}

func newHistory() *history {
	return &history{begin: time.Now(), writes: map[string][]writeRec{}, fails: map[string]int{}}
}

func (h *history) now() time.Duration { return time.Since(h.begin) }

// set writes key=value through nc with Roost-Ack: all and records it.
func (h *history) set(nc *nats.Conn, key, value string, timeout time.Duration) writeRec {
	w := writeRec{value: value, start: h.now()}
	r, err := send(nc, "roost.set."+key, []byte(value), timeout, "Roost-Ack", "all")
	w.end = h.now()
	switch {
	case err != nil:
		w.failure = err.Error()
	case r.code != 200:
		w.failure = fmt.Sprintf("%d %s", r.code, r.err)
	default:
		v, perr := strconv.ParseUint(r.hdr.Get("Roost-Version"), 10, 64)
		if perr != nil || v == 0 {
			w.failure = fmt.Sprintf("200 without a version (%q)", r.hdr.Get("Roost-Version"))
		} else {
			w.acked, w.version = true, v
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writes[key] = append(h.writes[key], w)
	if !w.acked {
		h.fails["set: "+failureKind(w.failure)]++
	}
	return w
}

// get reads key through nc and records it; ok is false when the read
// failed (no answer, or an error other than 404).
func (h *history) get(nc *nats.Conn, key string, timeout time.Duration) (readRec, bool) {
	rr := readRec{key: key, start: h.now(), via: nc.ConnectedServerName()}
	r, err := send(nc, "roost.get."+key, nil, timeout)
	rr.end = h.now()
	var failure string
	switch {
	case err != nil:
		failure = err.Error()
	case r.code == 404:
	case r.code != 200:
		failure = fmt.Sprintf("%d %s", r.code, r.err)
	default:
		v, perr := strconv.ParseUint(r.hdr.Get("Roost-Version"), 10, 64)
		if perr != nil {
			failure = "200 without a version"
			break
		}
		rr.found, rr.version, rr.value = true, v, string(r.body)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if failure != "" {
		h.fails["get: "+failureKind(failure)]++
		return rr, false
	}
	h.reads = append(h.reads, rr)
	return rr, true
}

// failureKind shortens an error for counting: no request IDs or subjects.
func failureKind(s string) string {
	if i := strings.IndexAny(s, "(\n"); i > 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// counts returns the acknowledged and failed writes and the reads.
func (h *history) counts() (acked, failed, reads int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ws := range h.writes {
		for _, w := range ws {
			if w.acked {
				acked++
			} else {
				failed++
			}
		}
	}
	return acked, failed, len(h.reads)
}

// summary says what the run did, failures by kind.
func (h *history) summary() string {
	acked, failed, reads := h.counts()
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%d keys, %d acked writes, %d writes with unknown outcome, %d reads", len(h.writes), acked, failed, reads)
	kinds := make([]string, 0, len(h.fails))
	for k := range h.fails {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "; %d× %s", h.fails[k], k)
	}
	return b.String()
}

// keys lists every key written, sorted.
func (h *history) keys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	keys := make([]string, 0, len(h.writes))
	for k := range h.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// lastAcked returns the acked writes of key with the highest version
// (several only when two got the same version: a tie, as after a split).
func (h *history) lastAcked(key string) []writeRec {
	h.mu.Lock()
	defer h.mu.Unlock()
	var top []writeRec
	for _, w := range h.writes[key] {
		switch {
		case !w.acked:
		case len(top) == 0 || w.version > top[0].version:
			top = []writeRec{w}
		case w.version == top[0].version:
			top = append(top, w)
		}
	}
	return top
}

// checkFinal judges the final read of key (r, as send returned it) against
// every write of key:
//
//   - "lost": an acked write with a higher version than the read's (or any
//     acked write, when the key reads as absent);
//   - "wrong": the read has the highest acked version but another value,
//     or the value of an acked write under another version;
//   - "unexplained": a higher version than any acked write, with a value
//     no write of the key with an unknown outcome sent.
//
// It returns "" when the read is right, else the kind and why.
func (h *history) checkFinal(key string, r reply, err error) (kind, why string) {
	top := h.lastAcked(key)
	if err != nil || (r.code != 200 && r.code != 404) {
		return "unreadable", fmt.Sprintf("%s: %v %d %s", key, err, r.code, r.err)
	}
	var version uint64
	if r.code == 200 {
		version, _ = strconv.ParseUint(r.hdr.Get("Roost-Version"), 10, 64)
	}
	value := string(r.body)
	if len(top) == 0 {
		return h.explainUnacked(key, r.code == 200, version, value)
	}
	want := top[0]
	switch {
	case r.code == 404:
		return "lost", fmt.Sprintf("%s: absent, acked v%d %q at +%s", key, want.version, want.value, want.end.Round(time.Millisecond))
	case version < want.version:
		return "lost", fmt.Sprintf("%s: v%d %q, acked v%d %q at +%s", key, version, value, want.version, want.value, want.end.Round(time.Millisecond))
	case version == want.version:
		for _, w := range top {
			if w.value == value {
				return "", ""
			}
		}
		return "wrong", fmt.Sprintf("%s: v%d %q, acked v%d %q", key, version, value, want.version, want.value)
	}
	return h.explainUnacked(key, true, version, value)
}

// explainUnacked checks a read newer than every acked write: its value
// must come from a write of key whose outcome is unknown.
func (h *history) explainUnacked(key string, found bool, version uint64, value string) (kind, why string) {
	if !found {
		return "", ""
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, w := range h.writes[key] {
		if w.value != value {
			continue
		}
		if !w.acked {
			return "", ""
		}
		return "wrong", fmt.Sprintf("%s: v%d %q, but that value was acked as v%d", key, version, value, w.version)
	}
	return "unexplained", fmt.Sprintf("%s: v%d %q, a value never written to it", key, version, value)
}

// checkReads judges every read of the run: a read must not return a
// version lower than one acked to a writer before the read began ("went
// back"), and a read of an acked version must return that write's value
// ("wrong"). It returns the counts of each and a few examples.
func (h *history) checkReads() (back, wrong int, examples []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, rr := range h.reads {
		var floor writeRec // the highest version acked before the read began
		for _, w := range h.writes[rr.key] {
			if w.acked && w.end < rr.start && w.version > floor.version {
				floor = w
			}
			if w.acked && rr.found && w.version == rr.version && w.value != rr.value {
				wrong++
				if len(examples) < 10 {
					examples = append(examples, fmt.Sprintf("read of %s at +%s via %s: v%d %q, but v%d was acked as %q",
						rr.key, rr.start.Round(time.Millisecond), rr.via, rr.version, rr.value, w.version, w.value))
				}
			}
		}
		if got := map[bool]uint64{true: rr.version}[rr.found]; got < floor.version {
			back++
			if len(examples) < 10 {
				examples = append(examples, fmt.Sprintf("read of %s at +%s via %s: v%d (found %t), but v%d %q was acked at +%s",
					rr.key, rr.start.Round(time.Millisecond), rr.via, got, rr.found, floor.version, floor.value, floor.end.Round(time.Millisecond)))
			}
		}
	}
	return back, wrong, examples
}

// finalCheck reads every key written through the node at url and judges
// each read with checkFinal. It returns nil when all are right, else an
// error with the count of each kind and a few examples.
func (h *history) finalCheck(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	defer nc.Close()
	keys := h.keys()
	type verdict struct{ kind, why string }
	verdicts := make([]verdict, len(keys))
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				r, err := send(nc, "roost.get."+keys[i], nil, 3*time.Second)
				verdicts[i].kind, verdicts[i].why = h.checkFinal(keys[i], r, err)
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	counts := map[string]int{}
	var examples []string
	for _, v := range verdicts {
		if v.kind == "" {
			continue
		}
		counts[v.kind]++
		if len(examples) < 8 {
			examples = append(examples, v.why)
		}
	}
	if len(counts) == 0 {
		return nil
	}
	return fmt.Errorf("through %s, of %d keys: %d lost (missing or older than acked), %d wrong value, %d unexplained, %d unreadable; e.g.\n    %s",
		url, len(keys), counts["lost"], counts["wrong"], counts["unexplained"], counts["unreadable"], strings.Join(examples, "\n    "))
}

// waitAllRight polls finalCheck through every node in urls until all are
// right, or fails the test with the last verdict once within has passed.
func (h *history) waitAllRight(t *testing.T, c *procCluster, names []string, within time.Duration) {
	t.Helper()
	start := time.Now()
	eventually(t, within, func() error {
		var errs []error
		for _, name := range names {
			if err := h.finalCheck(c.url(name)); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
		return errors.Join(errs...)
	})
	t.Logf("every key right through %v after %s", names, time.Since(start).Round(time.Millisecond))
}

// TestHistoryCheckerCatchesLosses proves the checks can fail: hand-built
// histories, with times in arbitrary units.
func TestHistoryCheckerCatchesLosses(t *testing.T) {
	t.Parallel()
	acked := func(value string, version uint64, end time.Duration) writeRec {
		return writeRec{value: value, start: end - 1, end: end, acked: true, version: version}
	}
	unknown := func(value string) writeRec { return writeRec{value: value, failure: "nats: timeout"} }
	found := func(value string, version uint64) reply {
		return reply{code: 200, body: []byte(value), hdr: nats.Header{"Roost-Version": []string{strconv.FormatUint(version, 10)}}}
	}
	absent := reply{code: 404, err: "not found"}
	tests := []struct {
		name   string
		writes []writeRec
		read   reply
		err    error
		want   string
	}{
		{"the acked write", []writeRec{acked("a", 10, 1)}, found("a", 10), nil, ""},
		{"absent after an ack", []writeRec{acked("a", 10, 1)}, absent, nil, "lost"},
		{"older than the ack", []writeRec{acked("old", 9, 1), acked("a", 10, 2)}, found("old", 9), nil, "lost"},
		{"the acked version, another value", []writeRec{acked("a", 10, 1)}, found("b", 10), nil, "wrong"},
		{"newer, from a write of unknown outcome", []writeRec{acked("a", 10, 1), unknown("c")}, found("c", 12), nil, ""},
		{"newer, never written", []writeRec{acked("a", 10, 1)}, found("zzz", 12), nil, "unexplained"},
		{"an acked value under another version", []writeRec{acked("x", 8, 1), acked("a", 10, 2)}, found("x", 12), nil, "wrong"},
		{"a tie of versions, either value", []writeRec{acked("a", 10, 1), acked("b", 10, 2)}, found("b", 10), nil, ""},
		{"absent, nothing acked", []writeRec{unknown("c")}, absent, nil, ""},
		{"no answer", []writeRec{acked("a", 10, 1)}, reply{}, errors.New("nats: timeout"), "unreadable"},
		{"an error answer", []writeRec{acked("a", 10, 1)}, reply{code: 503, err: "not ready"}, nil, "unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHistory()
			h.writes["k"] = tt.writes
			if kind, why := h.checkFinal("k", tt.read, tt.err); kind != tt.want {
				t.Errorf("checkFinal = %q (%s), want %q", kind, why, tt.want)
			}
		})
	}

	h := newHistory()
	h.writes["k"] = []writeRec{acked("a", 10, 5)}
	h.reads = []readRec{
		{key: "k", start: 4, found: false},                           // began before the ack: fine
		{key: "k", start: 6, found: true, version: 10, value: "a"},   // fine
		{key: "k", start: 6, found: false},                           // went back
		{key: "k", start: 7, found: true, version: 9, value: "old"},  // went back
		{key: "k", start: 8, found: true, version: 10, value: "bad"}, // wrong value
	}
	if back, wrong, examples := h.checkReads(); back != 2 || wrong != 1 {
		t.Errorf("checkReads = %d back, %d wrong, want 2 and 1; %q", back, wrong, examples)
	}
}
