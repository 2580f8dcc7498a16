package integration

// One key, several clients doing get, set and compare-and-set (all writes
// Roost-Ack: all) through real processes while nodes are killed and
// restarted; porcupine checks the history against a register with CAS.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/nats-io/nats.go"
)

// casOp is the kind of a casInput.
type casOp uint8

const (
	casGet casOp = iota
	casSet
	casCAS
)

// casInput is an operation on the one key. A CAS carries the version the
// client last saw and, for the model, the value it saw with it: values are
// unique, and a version names one write, so "the key is at that version"
// is "the key holds that value" (absent for Roost-CAS: 0).
type casInput struct {
	Op          casOp
	Value       string // set, CAS: the value written, unique in the run
	ExpectFound bool   // CAS: the key was present at ExpectVer
	ExpectValue string // CAS: the value seen with ExpectVer
	ExpectVer   uint64 // CAS: Roost-CAS sent (0 = only if absent)
}

// casOutput is an operation's outcome.
type casOutput struct {
	Found    bool   // get: present
	Value    string // get: the value read
	Version  uint64 // get, or an acked set/CAS: Roost-Version
	Mismatch bool   // CAS: 409, the key was not at ExpectVer
	Unknown  bool   // set, CAS: failed or timed out, may or may not have applied
	Err      string // why the outcome is unknown
}

// casModel is one register with compare-and-set, absent at first.
var casModel = porcupine.Model{
	Init: func() any { return register{} },
	Step: func(state, input, output any) (bool, any) {
		reg, in, out := state.(register), input.(casInput), output.(casOutput)
		switch in.Op {
		case casGet:
			return out.Found == reg.present && out.Value == reg.value, reg
		case casSet:
			return true, register{present: true, value: in.Value} // acked or unknown: if linearized, it wrote
		case casCAS:
			matches := in.ExpectFound == reg.present && (!in.ExpectFound || in.ExpectValue == reg.value)
			next := register{present: true, value: in.Value}
			switch {
			case out.Unknown: // linearized here, it applied iff the key matched
				if matches {
					return true, next
				}
				return true, reg
			case out.Mismatch:
				return !matches, reg
			default:
				return matches, next
			}
		}
		panic(fmt.Sprintf("cas model: unknown op %d", in.Op))
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(casInput), output.(casOutput)
		res := fmt.Sprintf("ok v%d", out.Version)
		switch {
		case out.Unknown:
			res = "? (" + out.Err + ")"
		case out.Mismatch:
			res = "409"
		}
		switch in.Op {
		case casGet:
			if !out.Found {
				return "get -> absent"
			}
			return fmt.Sprintf("get -> %s v%d", out.Value, out.Version)
		case casSet:
			return fmt.Sprintf("set(%s) -> %s", in.Value, res)
		}
		at := "absent"
		if in.ExpectFound {
			at = fmt.Sprintf("%s v%d", in.ExpectValue, in.ExpectVer)
		}
		return fmt.Sprintf("cas(%s if at %s) -> %s", in.Value, at, res)
	},
	DescribeState: func(state any) string {
		if reg := state.(register); reg.present {
			return reg.value
		}
		return "absent"
	},
}

// casThink is a casClient's pause between operations.
// 20 ms keeps a run's history to a few thousand operations, which
// porcupine decides in seconds; at 1 ms (15,000 operations) it could not
// decide within a minute.
const casThink = 20 * time.Millisecond

// casClient issues one operation at a time on the key, on its own
// connection, which fails over between the nodes.
type casClient struct {
	nc      *nats.Conn
	index   int // names its values
	id      int // porcupine client id; a fresh one after an unknown outcome
	key     string
	rng     *rand.Rand
	start   time.Time
	nextID  *atomic.Int64
	seen    casOutput // the last state it saw (get, or its own acked write)
	seenAny bool
	history []porcupine.Operation
	counts  map[string]int // outcomes by kind
}

func (c *casClient) run(ctx context.Context) {
	for n := 0; ctx.Err() == nil; n++ {
		in := casInput{Op: casGet}
		switch p := c.rng.Float64(); {
		case !c.seenAny || p < 0.4:
		case p < 0.7:
			in = casInput{Op: casSet, Value: fmt.Sprintf("c%d-%d", c.index, n)}
		default:
			in = casInput{Op: casCAS, Value: fmt.Sprintf("c%d-%d", c.index, n),
				ExpectFound: c.seen.Found, ExpectValue: c.seen.Value, ExpectVer: c.seen.Version}
		}
		op, kept := c.do(in)
		out, _ := op.Output.(casOutput)
		if kept {
			c.history = append(c.history, op)
		}
		switch {
		case !kept:
			c.counts["get failed"]++
		case out.Unknown:
			c.counts[fmt.Sprintf("%s unknown", [...]string{"get", "set", "cas"}[in.Op])]++
			c.id = int(c.nextID.Add(1) - 1) // its open operation stays open forever
		case out.Mismatch:
			c.counts["cas 409"]++
			c.seenAny = false // read before the next CAS
		default:
			c.counts[[...]string{"get", "set", "cas"}[in.Op]+" ok"]++
			c.seen, c.seenAny = out, true
			if in.Op != casGet {
				c.seen = casOutput{Found: true, Value: in.Value, Version: out.Version}
			}
		}
		// Think between operations, to keep the history within what
		// porcupine checks in seconds; longer after a failure, so that a
		// client whose node is down does not fill the history with unknown
		// writes (each one widens the search).
		think := casThink
		if !kept || out.Unknown {
			think = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(think):
		}
	}
}

// do performs one operation; kept is false for a failed get (it changed
// nothing and tells nothing).
func (c *casClient) do(in casInput) (op porcupine.Operation, kept bool) {
	subj := "roost.get." + c.key
	var body []byte
	var headers []string
	if in.Op != casGet {
		subj, body, headers = "roost.set."+c.key, []byte(in.Value), []string{"Roost-Ack", "all"}
	}
	if in.Op == casCAS {
		headers = append(headers, "Roost-CAS", strconv.FormatUint(in.ExpectVer, 10))
	}
	via := c.nc.ConnectedServerName()
	call := time.Since(c.start).Nanoseconds()
	r, err := send(c.nc, subj, body, faultWriteTimeout, headers...)
	ret := time.Since(c.start).Nanoseconds()
	op = porcupine.Operation{ClientId: c.id, Input: in, Call: call, Return: ret, Metadata: via}
	version, _ := strconv.ParseUint(r.hdr.Get("Roost-Version"), 10, 64)
	switch {
	case err == nil && r.code == 200:
		op.Output = casOutput{Found: true, Value: string(r.body), Version: version}
		return op, true
	case err == nil && r.code == 404 && in.Op == casGet:
		op.Output = casOutput{}
		return op, true
	case err == nil && r.code == 409 && in.Op == casCAS:
		op.Output = casOutput{Mismatch: true}
		return op, true
	case in.Op == casGet:
		return op, false
	}
	why := fmt.Sprint(err)
	if err == nil {
		why = fmt.Sprintf("%d %s", r.code, r.err)
	}
	op.Output = casOutput{Unknown: true, Err: failureKind(why)}
	op.Return = unknownReturn
	return op, true
}

// TestKillRestartLinearizable: 8 clients do get, set and CAS (ack=all) on
// one key through any of three processes (R=2) while a random node is
// killed or stopped and restarted every few seconds; the history must be
// linearizable (porcupine). A write whose answer never came, or was an
// error, may or may not have applied: the model allows both.
func TestKillRestartLinearizable(t *testing.T) {
	// Not parallel: kill -9 and restarts on a schedule, timed against heartbeats.
	if testing.Short() {
		t.Skip("kills and restarts processes for several seconds")
	}
	env := readFaultEnv(t, 12*time.Second)
	env.eachSeed(t, func(t *testing.T, seed uint64) {
		c := startProcCluster(t, procClusterOptions{Args: []string{"--replicas", "2"}})
		start := time.Now()
		var nextID atomic.Int64
		const clients = 8
		nextID.Store(clients)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		cs := make([]*casClient, clients)
		for i := range cs {
			cs[i] = &casClient{nc: dialAll(t, c), index: i, id: i, key: fmt.Sprintf("lin.%d", seed),
				rng: rand.New(rand.NewPCG(seed, uint64(i))), start: start, nextID: &nextID, counts: map[string]int{}}
			wg.Go(func() { cs[i].run(ctx) })
		}
		stopClients := sync.OnceFunc(func() { cancel(); wg.Wait() })
		defer stopClients()

		// Issue 11's schedule (see TestKillRestartUnderLoad).
		sched := faultSchedule{up: [2]time.Duration{4 * time.Second, 6 * time.Second}, down: [2]time.Duration{2500 * time.Millisecond, 3500 * time.Millisecond}, graceful: 0.25}
		kills, stops := sched.run(c, rand.New(rand.NewPCG(seed, 1<<32)), env.duration) // returns with all serving
		stopClients()
		c.event("clients stopped")

		var history []porcupine.Operation
		counts := map[string]int{}
		for _, cl := range cs {
			history = append(history, cl.history...)
			for k, n := range cl.counts {
				counts[k] += n
			}
		}
		t.Logf("%d kills, %d graceful stops; %d operations: %v", kills, stops, len(history), counts)
		if counts["set ok"]+counts["cas ok"] < 50 || counts["get ok"] < 50 || counts["cas ok"] < 5 {
			t.Fatalf("too few acked writes, successful CAS or reads for the check to mean anything: %v", counts)
		}
		checkStart := time.Now()
		res, info := porcupine.CheckOperationsVerbose(casModel, history, 60*time.Second)
		t.Logf("porcupine says %s in %s", res, time.Since(checkStart).Round(time.Millisecond))
		if res == porcupine.Ok {
			return
		}
		path := filepath.Join(t.ArtifactDir(), "linearizability.html")
		if err := porcupine.VisualizePath(casModel, info, path); err != nil {
			t.Errorf("write visualization: %v", err)
		}
		if res == porcupine.Unknown {
			t.Fatalf("porcupine could not decide within 60 s on %d operations (seed %d); see %s", len(history), seed, path)
		}
		t.Fatalf("history of %d operations is not linearizable (seed %d); see %s\n%s",
			len(history), seed, path, explainWith(casModel, history, info, c.begin, start))
	})
}

// explainWith describes where the longest linearization porcupine found
// got stuck (model has one partition): the state there, the operations
// just before and the earliest it could not place next, with their times
// on the harness's clock (begin) so that they line up with its timeline.
func explainWith(model porcupine.Model, history []porcupine.Operation, info porcupine.LinearizationInfo, begin, start time.Time) string {
	offset := start.Sub(begin)
	at := func(ns int64) string {
		if ns == unknownReturn {
			return "never"
		}
		return (offset + time.Duration(ns)).Round(time.Millisecond).String()
	}
	describe := func(op porcupine.Operation) string {
		return fmt.Sprintf("[+%s, +%s] client %d (%v): %s", at(op.Call), at(op.Return), op.ClientId, op.Metadata,
			model.DescribeOperation(op.Input, op.Output))
	}
	return explainStuck(model, [][]porcupine.Operation{history}, info, describe, func(part []porcupine.Operation, placed int, state string) string {
		return fmt.Sprintf("%d of %d operations linearized, then the key holds %s", placed, len(part), state)
	})
}
