package integration

// A linearizability checker for the text API: clients issue random gets and
// sets against a cluster, every call and return is timed, and porcupine
// checks the history against one register per key.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/roostkv/roost/node"
)

// linOptions shapes a linearizability run. Zero values mean the default.
type linOptions struct {
	Clients      int           // concurrent clients, each on its own connection, to nodes round-robin; 0 = 8
	Keys         int           // distinct keys the clients share (few keys, many conflicts); 0 = 4
	Duration     time.Duration // how long clients issue operations; 0 = 2s
	SetRatio     float64       // fraction of operations that are sets; 0 = 0.5
	OpTimeout    time.Duration // per request; a set that times out may or may not have applied; 0 = 2s
	CheckTimeout time.Duration // porcupine's budget; running out fails the run as Unknown; 0 = 10s
	Seed         uint64        // chooses the operations (not their timing); 0 = from the clock, logged
}

func (o linOptions) withDefaults() linOptions {
	if o.Clients == 0 {
		o.Clients = 8
	}
	if o.Keys == 0 {
		o.Keys = 4
	}
	if o.Duration == 0 {
		o.Duration = 2 * time.Second
	}
	if o.SetRatio == 0 {
		o.SetRatio = 0.5
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 2 * time.Second
	}
	if o.CheckTimeout == 0 {
		o.CheckTimeout = 10 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	return o
}

// linStats counts what a run did; the history checked is Gets+Sets+Unknown operations.
type linStats struct {
	Gets    int // gets that answered a value or 404
	Sets    int // sets acknowledged by every owner (Roost-Ack: all)
	Unknown int // sets that failed or timed out: checked as maybe applied
	Dropped int // gets that failed, and sets no node received (no responders): left out
}

// Completed is the number of operations with a known outcome.
func (s linStats) Completed() int { return s.Gets + s.Sets }

// linOp is the kind of an operation.
type linOp uint8

const (
	linGet linOp = iota
	linSet
)

// linInput is an operation's porcupine input.
type linInput struct {
	Op    linOp
	Key   string
	Value string // set: the value written, unique in the run
}

// linOutput is an operation's porcupine output.
type linOutput struct {
	Found   bool   // get: the key had a value (false: 404)
	Value   string // get: the value read
	Unknown bool   // set: failed or timed out, so it may or may not have applied
	Err     string // why the outcome is unknown
}

// register is the model's state for one key; the zero value is absent.
type register struct {
	present bool
	value   string
}

// unknownReturn is the return time of an operation whose outcome is
// unknown: open to the end of the history, it may take effect at any moment
// after its call, or (linearized last) never: a call that never returned.
const unknownReturn = math.MaxInt64

// registerModel is one read/write register per key, absent at first.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(linInput).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			parts[i] = byKey[k]
		}
		return parts
	},
	Init: func() any { return register{} },
	Step: func(state, input, output any) (bool, any) {
		reg, in, out := state.(register), input.(linInput), output.(linOutput)
		switch in.Op {
		case linSet:
			// Acknowledged or unknown alike: if it is linearized, it wrote.
			return true, register{present: true, value: in.Value}
		case linGet:
			return out.Found == reg.present && out.Value == reg.value, reg
		}
		panic(fmt.Sprintf("linearize: unknown op %d", in.Op))
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		switch {
		case in.Op == linSet && out.Unknown:
			return fmt.Sprintf("set(%s, %s) -> ? (%s)", in.Key, in.Value, out.Err)
		case in.Op == linSet:
			return fmt.Sprintf("set(%s, %s)", in.Key, in.Value)
		case out.Found:
			return fmt.Sprintf("get(%s) -> %s", in.Key, out.Value)
		}
		return fmt.Sprintf("get(%s) -> absent", in.Key)
	},
	DescribeState: func(state any) string {
		if reg := state.(register); reg.present {
			return reg.value
		}
		return "absent"
	},
}

// runLinearizable runs opts.Clients clients of random gets and sets
// against nodes for opts.Duration, calls during (when not nil) halfway
// through, and fails the test unless porcupine finds the history
// linearizable. Clients keep going for at least half the duration after
// during returns, so a fault it injects is followed by operations. The
// caller asserts on the returned counts.
func runLinearizable(t *testing.T, nodes []*node.Node, opts linOptions, during func()) linStats {
	t.Helper()
	opts = opts.withDefaults()
	prefix := "lin." + nuid.Next() + "." // fresh keys: absent at first, as the model starts
	keys := make([]string, opts.Keys)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	t.Logf("linearizability: %d clients over %d nodes, %d keys, %s, seed %d",
		opts.Clients, len(nodes), opts.Keys, opts.Duration, opts.Seed)

	conns := make([]*nats.Conn, opts.Clients)
	for i := range conns {
		// A client whose node dies reconnects to another it learned of.
		conns[i] = connect(t, nodes[i%len(nodes)], nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	}

	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	nextID := atomic.Int64{}
	nextID.Store(int64(opts.Clients))
	results := make([]linClientResult, opts.Clients)
	var wg sync.WaitGroup
	for i := range opts.Clients {
		c := &linClient{
			nc: conns[i], index: i, id: i, keys: keys, opts: opts,
			rng: rand.New(rand.NewPCG(opts.Seed, uint64(i))), start: start, nextID: &nextID,
		}
		wg.Go(func() { results[i] = c.run(ctx) })
	}
	stop := sync.OnceFunc(func() { cancel(); wg.Wait() })
	defer stop() // also when during fails the test

	end := start.Add(opts.Duration)
	if during != nil {
		<-time.After(opts.Duration / 2)
		during()
		if after := time.Now().Add(opts.Duration / 2); after.After(end) {
			end = after
		}
	}
	<-time.After(time.Until(end))
	stop()

	var history []porcupine.Operation
	var stats linStats
	errs := map[string]int{}
	for _, r := range results {
		history = append(history, r.history...)
		stats.Gets += r.stats.Gets
		stats.Sets += r.stats.Sets
		stats.Unknown += r.stats.Unknown
		stats.Dropped += r.stats.Dropped
		for e, n := range r.errs {
			errs[e] += n
		}
	}
	t.Logf("linearizability: %d gets, %d sets, %d unknown sets, %d dropped in %s",
		stats.Gets, stats.Sets, stats.Unknown, stats.Dropped, time.Since(start).Round(time.Millisecond))
	for _, e := range slices.Sorted(maps.Keys(errs)) {
		t.Logf("linearizability: %d× %s", errs[e], e)
	}

	checkStart := time.Now()
	res, info := checkHistory(history, opts.CheckTimeout)
	t.Logf("linearizability: porcupine says %s in %s", res, time.Since(checkStart).Round(time.Millisecond))
	switch res {
	case porcupine.Illegal:
		t.Fatalf("history of %d operations is not linearizable (seed %d); see %s\n%s",
			len(history), opts.Seed, visualize(t, info), explainIllegal(history, info))
	case porcupine.Unknown:
		t.Fatalf("porcupine could not decide within %s on a history of %d operations (seed %d); see %s",
			opts.CheckTimeout, len(history), opts.Seed, visualize(t, info))
	}
	return stats
}

// checkHistory checks history against registerModel.
func checkHistory(history []porcupine.Operation, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	return porcupine.CheckOperationsVerbose(registerModel, history, timeout)
}

// visualize writes porcupine's HTML view of a check into the test's
// artifact directory (kept with go test -artifacts, a temporary directory
// otherwise) and returns its path.
func visualize(t *testing.T, info porcupine.LinearizationInfo) string {
	t.Helper()
	path := filepath.Join(t.ArtifactDir(), "linearizability.html")
	if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
		t.Errorf("write visualization: %v", err)
	}
	return path
}

// explainIllegal describes, for each key whose history porcupine could not
// linearize, where the longest linearization it found got stuck: the
// register's value there, the operations just before, and the earliest
// operations it could not place next. It reads the log without the HTML.
func explainIllegal(history []porcupine.Operation, info porcupine.LinearizationInfo) string {
	parts := registerModel.Partition(history) // in the order porcupine checked them
	return explainStuck(registerModel, parts, info, describeOp, func(part []porcupine.Operation, placed int, state string) string {
		return fmt.Sprintf("key %s: %d of %d operations linearized, then the register holds %s", part[0].Input.(linInput).Key, placed, len(part), state)
	})
}

// explainStuck writes, for each partition of a history porcupine could not
// linearize, where its longest linearization stopped: a header (from the
// operations placed and the model's state there), the last three
// operations placed, and the first five it could not place next.
func explainStuck(model porcupine.Model, parts [][]porcupine.Operation, info porcupine.LinearizationInfo,
	describe func(porcupine.Operation) string, header func(part []porcupine.Operation, placed int, state string) string) string {
	var b strings.Builder
	for p, partials := range info.PartialLinearizations() {
		var longest []int // none when not even the first operation fits
		for _, l := range partials {
			if len(l) > len(longest) {
				longest = l
			}
		}
		part := parts[p]
		if len(longest) == len(part) {
			continue
		}
		state := model.Init()
		placed := make([]bool, len(part))
		for _, id := range longest {
			_, state = model.Step(state, part[id].Input, part[id].Output)
			placed[id] = true
		}
		fmt.Fprintf(&b, "%s\n", header(part, len(longest), model.DescribeState(state)))
		for _, id := range longest[max(0, len(longest)-3):] {
			fmt.Fprintf(&b, "  linearized  %s\n", describe(part[id]))
		}
		var rest []porcupine.Operation
		for id, op := range part {
			if !placed[id] {
				rest = append(rest, op)
			}
		}
		slices.SortFunc(rest, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
		for _, op := range rest[:min(5, len(rest))] {
			fmt.Fprintf(&b, "  not placed  %s\n", describe(op))
		}
	}
	return b.String()
}

// describeOp renders an operation with its times since the run began.
func describeOp(op porcupine.Operation) string {
	ret := "never"
	if op.Return != unknownReturn {
		ret = time.Duration(op.Return).String()
	}
	via := ""
	if op.Metadata != nil {
		via = fmt.Sprintf(" (%v)", op.Metadata)
	}
	return fmt.Sprintf("[%s, %s] client %d%s: %s", time.Duration(op.Call), ret, op.ClientId, via,
		registerModel.DescribeOperation(op.Input, op.Output))
}

// linClient issues operations one at a time on its own connection.
type linClient struct {
	nc     *nats.Conn
	index  int // which client: names its values
	id     int // porcupine client id: a fresh one after an unknown outcome, as a crashed process is replaced
	keys   []string
	opts   linOptions
	rng    *rand.Rand
	start  time.Time     // the history's time zero
	nextID *atomic.Int64 // shared source of fresh client ids
}

type linClientResult struct {
	history []porcupine.Operation
	stats   linStats
	errs    map[string]int // failures by kind, for the log
}

// run issues operations until ctx ends; the one in flight then finishes.
func (c *linClient) run(ctx context.Context) linClientResult {
	res := linClientResult{errs: map[string]int{}}
	for n := 0; ctx.Err() == nil; n++ {
		in := linInput{Op: linGet, Key: c.keys[c.rng.IntN(len(c.keys))]}
		if c.rng.Float64() < c.opts.SetRatio {
			in.Op, in.Value = linSet, fmt.Sprintf("c%d-%d", c.index, n)
		}
		op, kept, failure := c.do(in)
		if failure != "" {
			res.errs[failure]++
		}
		switch {
		case !kept:
			res.stats.Dropped++
		case op.Output.(linOutput).Unknown:
			res.stats.Unknown++
		case in.Op == linSet:
			res.stats.Sets++
		default:
			res.stats.Gets++
		}
		if kept {
			res.history = append(res.history, op)
		}
		if failure != "" {
			if kept {
				c.id = int(c.nextID.Add(1) - 1) // this client's unknown op stays open forever
			}
			// Pace a failing client, so a dead node does not fill the
			// history with unknown sets (each one widens the search).
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return res
}

// do performs one operation and says whether it belongs in the history
// and, when it failed, why.
func (c *linClient) do(in linInput) (op porcupine.Operation, kept bool, failure string) {
	msg := nats.NewMsg("roost.get." + in.Key)
	if in.Op == linSet {
		msg = nats.NewMsg("roost.set." + in.Key)
		msg.Data = []byte(in.Value)
		msg.Header.Set("Roost-Ack", "all")
	}
	call := time.Since(c.start).Nanoseconds()
	resp, err := c.nc.RequestMsg(msg, c.opts.OpTimeout)
	ret := time.Since(c.start).Nanoseconds()
	// Metadata, for the visualization: the node that took the request, and the version.
	via := c.nc.ConnectedServerName()
	op = porcupine.Operation{ClientId: c.id, Input: in, Call: call, Return: ret, Metadata: via}

	if errors.Is(err, nats.ErrNoResponders) {
		return op, false, "no responders" // delivered to no node: applied nowhere
	}
	if err == nil {
		switch code := resp.Header.Get("Nats-Service-Error-Code"); {
		case code == "":
			op.Output = linOutput{}
			if in.Op == linGet {
				op.Output = linOutput{Found: true, Value: string(resp.Data)}
			}
			op.Metadata = via + " v" + resp.Header.Get("Roost-Version")
			return op, true, ""
		case code == "404" && in.Op == linGet:
			op.Output = linOutput{}
			return op, true, ""
		default:
			err = fmt.Errorf("%s %s", code, resp.Header.Get("Nats-Service-Error"))
		}
	}
	if in.Op == linGet {
		return op, false, "get: " + err.Error() // a failed read changes nothing
	}
	failure = err.Error()
	op.Output = linOutput{Unknown: true, Err: failure}
	op.Return = unknownReturn
	return op, true, "set: " + failure
}

func TestLinearizableFaultFree(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, func(_ int, c *node.Config) { c.Replicas = 2 })
	stats := runLinearizable(t, nodes, linOptions{Clients: 8, Duration: 2 * time.Second}, nil)
	if stats.Completed() < 200 || stats.Gets < 50 || stats.Sets < 50 {
		t.Fatalf("only %d gets and %d sets completed: too few for the check to mean anything", stats.Gets, stats.Sets)
	}
	// Nothing is wrong with this cluster: failures beyond a stray timeout
	// are a bug too, even though the checker forgives them.
	if failed := stats.Unknown + stats.Dropped; failed*100 > stats.Completed() {
		t.Fatalf("%d of %d operations failed on a healthy cluster", failed, failed+stats.Completed())
	}
}

// TestLinearizabilityCheckerCatchesViolations proves the checker can fail:
// hand-built histories, with times in arbitrary units.
func TestLinearizabilityCheckerCatchesViolations(t *testing.T) {
	t.Parallel()
	set := func(client int, key, value string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: linInput{Op: linSet, Key: key, Value: value}, Call: call, Output: linOutput{}, Return: ret}
	}
	unknownSet := func(client int, key, value string, call int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: linInput{Op: linSet, Key: key, Value: value}, Call: call, Output: linOutput{Unknown: true, Err: "timeout"}, Return: unknownReturn}
	}
	get := func(client int, key, value string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: linInput{Op: linGet, Key: key}, Call: call, Output: linOutput{Found: true, Value: value}, Return: ret}
	}
	absent := func(client int, key string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: linInput{Op: linGet, Key: key}, Call: call, Output: linOutput{}, Return: ret}
	}
	tests := []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"read of a value never written", []porcupine.Operation{
			set(0, "k", "a", 0, 10), get(1, "k", "b", 20, 30),
		}, porcupine.Illegal},
		{"stale read after a later write completed", []porcupine.Operation{
			set(0, "k", "a", 0, 10), set(0, "k", "b", 20, 30), get(1, "k", "a", 40, 50),
		}, porcupine.Illegal},
		{"absent after a write completed", []porcupine.Operation{
			set(0, "k", "a", 0, 10), absent(1, "k", 20, 30),
		}, porcupine.Illegal},
		{"new value then old value", []porcupine.Operation{
			set(0, "k", "a", 0, 10), set(0, "k", "b", 20, 60), get(1, "k", "b", 25, 30), get(1, "k", "a", 40, 50),
		}, porcupine.Illegal},
		{"unknown set seen, then undone", []porcupine.Operation{
			set(0, "k", "a", 0, 10), unknownSet(0, "k", "b", 20), get(1, "k", "b", 30, 40), get(1, "k", "a", 50, 60),
		}, porcupine.Illegal},
		{"a value from another key", []porcupine.Operation{
			set(0, "x", "a", 0, 10), get(1, "y", "a", 20, 30),
		}, porcupine.Illegal},
		// Controls: the same shapes, legal.
		{"read during a write sees the old value", []porcupine.Operation{
			set(0, "k", "a", 0, 10), set(0, "k", "b", 20, 40), get(1, "k", "a", 25, 30),
		}, porcupine.Ok},
		{"read during a write sees the new value", []porcupine.Operation{
			set(0, "k", "a", 0, 10), set(0, "k", "b", 20, 40), get(1, "k", "b", 25, 30), get(1, "k", "b", 50, 60),
		}, porcupine.Ok},
		{"unknown set that applied", []porcupine.Operation{
			set(0, "k", "a", 0, 10), unknownSet(0, "k", "b", 20), get(1, "k", "a", 30, 40), get(1, "k", "b", 50, 60),
		}, porcupine.Ok},
		{"unknown set that never applied", []porcupine.Operation{
			set(0, "k", "a", 0, 10), unknownSet(0, "k", "b", 20), get(1, "k", "a", 30, 40), get(1, "k", "a", 50, 60),
		}, porcupine.Ok},
		{"keys are independent", []porcupine.Operation{
			set(0, "x", "a", 0, 10), absent(1, "y", 20, 30), get(1, "x", "a", 40, 50),
		}, porcupine.Ok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, info := checkHistory(tt.history, time.Second)
			if res != tt.want {
				t.Fatalf("checker says %s, want %s", res, tt.want)
			}
			if res == porcupine.Illegal {
				// The failure report a real run would give is written too.
				path := visualize(t, info)
				if !fileHasContent(path) {
					t.Fatalf("no visualization at %s", path)
				}
				why := explainIllegal(tt.history, info)
				if !strings.Contains(why, "not placed") {
					t.Fatalf("explanation names no operation it could not place:\n%s", why)
				}
				t.Logf("explained:\n%s", why)
			}
		})
	}
}

func fileHasContent(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Size() > 0
}
