package node

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// BenchmarkTextRequests measures the text API's get and set end to end —
// 32 requesters on one TCP connection to a node alone, 100-byte values —
// beside a keyed echo on the same server (the key in the subject, a
// wildcard subscription, nats.Msg.Respond on an in-process connection of
// its own, as `roost bench --echo-subject keyed` serves it), in one run:
//
//	go test -run '^$' -bench TextRequests -benchtime 100000x -count 3 ./node/
//
// Besides ops/s each reports cpu-µs/op, the whole process's CPU time (the
// node, its server and the requesters) per request from getrusage: on a
// machine shared with other work it moves far less than ops/s, and on two
// cores it is what bounds throughput. The *-vs-echo benchmarks take turns
// with the echo in slices of 2000 requests and report roost/echo for both
// measures (ops/s, and echo's CPU per request over Roost's);
// queue-echo-vs-echo puts the keyed echo in a queue group, as micro
// subscribes Roost's endpoints, beside the plain one.
//
// For the profile of one path alone, -bench 'TextRequests/get$' -cpuprofile.
func BenchmarkTextRequests(b *testing.B) {
	const keys = 100_000
	n, names := benchNode(b, keys)
	value := make([]byte, 100)
	echo, err := n.bus.Connect()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(echo.Close)
	if _, err := echo.Subscribe("bench.echok.get.>", func(m *nats.Msg) { _ = m.Respond(value) }); err != nil {
		b.Fatal(err)
	}
	if _, err := echo.Subscribe("bench.echok.set.>", func(m *nats.Msg) { _ = m.Respond(nil) }); err != nil {
		b.Fatal(err)
	}
	// The same echo in a queue group, as micro subscribes Roost's endpoints
	// (not a baseline: it tells what the queue group costs the server).
	if _, err := echo.QueueSubscribe("bench.echoq.get.>", "q", func(m *nats.Msg) { _ = m.Respond(value) }); err != nil {
		b.Fatal(err)
	}
	if err := echo.Flush(); err != nil {
		b.Fatal(err)
	}
	nc, err := nats.Connect(n.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	req := func(prefix string, data []byte, wantValue bool) func(*rand.Rand) error {
		return func(rng *rand.Rand) error {
			m, err := nc.Request(prefix+names[rng.IntN(keys)], data, 5*time.Second)
			if err != nil {
				return err
			}
			if code := m.Header.Get("Nats-Service-Error-Code"); code != "" {
				return &apiError{msg: m.Subject + ": " + code + " " + m.Header.Get("Nats-Service-Error")}
			}
			if wantValue && len(m.Data) != len(value) {
				return &apiError{msg: "reply of " + strconv.Itoa(len(m.Data)) + " bytes"}
			}
			return nil
		}
	}
	get, echoGet := req("roost.get.", nil, true), req("bench.echok.get.", nil, true)
	set, echoSet := req("roost.set.", value, false), req("bench.echok.set.", value, false)
	b.Run("get", func(b *testing.B) { reportRun(b, requests(b, b.N, get, 0)) })
	b.Run("echo-get", func(b *testing.B) { reportRun(b, requests(b, b.N, echoGet, 0)) })
	b.Run("set", func(b *testing.B) { reportRun(b, requests(b, b.N, set, 0)) })
	b.Run("echo-set", func(b *testing.B) { reportRun(b, requests(b, b.N, echoSet, 0)) })
	b.Run("get-vs-echo", func(b *testing.B) { takeTurns(b, get, echoGet) })
	b.Run("set-vs-echo", func(b *testing.B) { takeTurns(b, set, echoSet) })
	b.Run("queue-echo-vs-echo", func(b *testing.B) { takeTurns(b, req("bench.echoq.get.", nil, true), echoGet) })
}

// run is what a run of requests took: wall time and process CPU time.
type run struct {
	calls     int
	wall, cpu time.Duration
}

func (r *run) add(o run) { r.calls, r.wall, r.cpu = r.calls+o.calls, r.wall+o.wall, r.cpu+o.cpu }

func (r run) opsPerSec() float64 { return float64(r.calls) / r.wall.Seconds() }

func (r run) cpuPerOp() float64 { return float64(r.cpu.Microseconds()) / float64(r.calls) }

func reportRun(b *testing.B, r run) {
	b.ReportMetric(r.opsPerSec(), "ops/s")
	b.ReportMetric(r.cpuPerOp(), "cpu-µs/op")
}

// requests makes calls calls of op by 32 goroutines, seeded with seed.
func requests(b *testing.B, calls int, op func(*rand.Rand) error, seed int) run {
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	cpu0, start := processCPU(b), time.Now()
	for g := range 32 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(g)))
			for next.Add(1) <= int64(calls) {
				if err := op(rng); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	r := run{calls: calls, wall: time.Since(start), cpu: processCPU(b) - cpu0}
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
	return r
}

// takeTurns runs b.N calls of roost and of echo in slices of 2000, and
// reports both and their ratios.
func takeTurns(b *testing.B, roost, echo func(*rand.Rand) error) {
	const slice = 2000
	var r, e run
	for done, i := 0, 0; done < b.N; done, i = done+slice, i+1 {
		calls := min(slice, b.N-done)
		r.add(requests(b, calls, roost, i))
		e.add(requests(b, calls, echo, i))
	}
	reportRun(b, r)
	b.ReportMetric(e.opsPerSec(), "echo-ops/s")
	b.ReportMetric(e.cpuPerOp(), "echo-cpu-µs/op")
	b.ReportMetric(r.opsPerSec()/e.opsPerSec(), "roost/echo")
	b.ReportMetric(e.cpuPerOp()/r.cpuPerOp(), "echo-cpu/roost-cpu")
}

// processCPU is the process's user and system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
