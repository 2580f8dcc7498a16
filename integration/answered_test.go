package integration

// Every request answered: requests in flight through a surviving node when
// another node is killed (kill -9, a real process) each get an answer —
// their reply, or a 503 — within the documented bound (docs/cluster.md,
// "Bounds"), never a hang; but for text requests NATS routed to the killed
// node itself, the key's primary (docs/PROTOCOL.md, "Routing"), which are
// lost with it as with any NATS service.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/client"
)

// The documented bounds (docs/cluster.md, "Bounds") of the answer to a
// request sent to a node, with the defaults, plus a second of slack for a
// loaded test machine (two cores, three processes):
const (
	// A get or an ack=primary write: the forwarding budget.
	boundPlain = 5*time.Second + time.Second
	// An ack=all write: the forwarding budget, then --ack-timeout for the
	// replicas.
	boundAckAll = 5*time.Second + 5*time.Second + time.Second
	// A Go client call, even in flight to the node that dies: the node's
	// bound, or the dead timeout (3 s), a table refresh (2 s) and the
	// client's grace (1 s) before a write fails and a read is sent again,
	// through the forwarding budget (5 s).
	boundClient = 3*time.Second + 2*time.Second + time.Second + 5*time.Second + time.Second
)

// farTimeout is the requesters' own timeout, far above every bound, so that
// a request the cluster leaves unanswered shows as a hang, not as a timeout
// of the requester's making.
const farTimeout = 60 * time.Second

// answered is one request of the load and how long its answer took.
type answered struct {
	kind   string        // what was asked: "text get", "client set all"...
	bound  time.Duration // the longest the answer may take
	start  time.Duration // since the load began
	took   time.Duration // until the answer (reply or error); 0 while none
	result string        // "ok", the error code or the error
}

// answerLog gathers the requests of every requester, answered or not.
type answerLog struct {
	mu    sync.Mutex
	begin time.Time
	reqs  []*answered
}

// start records a request leaving now, to be answered within bound.
func (l *answerLog) start(kind string, bound time.Duration) *answered {
	a := &answered{kind: kind, bound: bound, start: time.Since(l.begin)}
	l.mu.Lock()
	l.reqs = append(l.reqs, a)
	l.mu.Unlock()
	return a
}

// done records a's answer.
func (l *answerLog) done(a *answered, result string) {
	took := time.Since(l.begin) - a.start
	l.mu.Lock()
	a.took, a.result = max(took, 1), result
	l.mu.Unlock()
}

// late returns the requests unanswered past their bound, or answered
// after it, as of now.
func (l *answerLog) late() (late []answered, total int) {
	now := time.Since(l.begin)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.reqs {
		if (a.took == 0 && now-a.start > a.bound) || a.took > a.bound {
			late = append(late, *a)
		}
	}
	return late, len(l.reqs)
}

// pending returns how many requests are not answered yet, and when the
// last bound among them runs out.
func (l *answerLog) pending() (n int, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.reqs {
		if a.took == 0 {
			n++
			if end := l.begin.Add(a.start + a.bound); end.After(until) {
				until = end
			}
		}
	}
	return n, until
}

// summary counts the requests by kind and result, with the longest wait.
func (l *answerLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	type agg struct {
		n       int
		longest time.Duration
	}
	by := map[string]*agg{}
	for _, a := range l.reqs {
		k := a.kind + " → " + a.result
		if a.took == 0 {
			k = a.kind + " → unanswered"
		}
		if by[k] == nil {
			by[k] = &agg{}
		}
		by[k].n++
		by[k].longest = max(by[k].longest, a.took)
	}
	var lines []string
	for k, v := range by {
		lines = append(lines, fmt.Sprintf("  %-40s %6d  longest %s", k, v.n, v.longest.Round(time.Millisecond)))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestEveryRequestAnswered: three roost processes, R=2; text-API gets and
// sets (some with Roost-Ack: all) and Go-client calls and batches all go
// through n1 while n2 is killed with SIGKILL. Every request gets an answer
// within its documented bound, but text requests in flight to n2 at the
// kill (routed there by partition: at most one per text requester).
func TestEveryRequestAnswered(t *testing.T) {
	// Not parallel: every request must be answered within its bound while a process is killed.
	if testing.Short() {
		t.Skip("starts three processes and kills one under load")
	}
	c := startProcCluster(t, procClusterOptions{Args: []string{"--replicas", "2"}})
	url := c.url("n1")

	const keys = 1000
	key := func(i int) string { return fmt.Sprintf("answered.%d", i) }
	cl, err := client.Connect(url, client.WithTimeout(farTimeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	for i := 0; i < keys; i += 100 {
		items := make([]client.SetItem, 100)
		for j := range items {
			items[j] = client.SetItem{Key: key(i + j), Value: []byte("v")}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := cl.MSet(ctx, items...)
		cancel()
		if err != nil {
			t.Fatalf("preload: %v", err)
		}
	}

	// The load: every requester loops until stop, one request at a time.
	log := &answerLog{begin: time.Now()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	text := func(kind string, bound time.Duration, verb string, headers ...string) {
		nc := dialURL(t, url)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := log.start(kind, bound)
				// Not farTimeout: a request lost with n2 (see lostWindow)
				// times out a second past its bound, reported late, and
				// its requester goes on.
				r, err := send(nc, "roost."+verb+"."+key(rand.IntN(keys)), []byte(fmt.Sprint(i)), bound+time.Second, headers...)
				switch {
				case errors.Is(err, nats.ErrConnectionClosed):
					return // the test ended: unanswered
				case err != nil:
					log.done(a, err.Error())
				default:
					log.done(a, fmt.Sprint(r.code))
				}
			}
		})
	}
	goClient := func(kind string, op func(ctx context.Context, c *client.Client, i int) error) {
		c, err := client.Connect(url, client.WithTimeout(farTimeout))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a := log.start(kind, boundClient)
				ctx, cancel := context.WithTimeout(context.Background(), farTimeout)
				err := op(ctx, c, i)
				cancel()
				var ce *client.Error
				var be *client.BatchError
				switch {
				case errors.Is(err, client.ErrClosed):
					return // the test ended: unanswered
				case err == nil, errors.Is(err, client.ErrNotFound):
					log.done(a, "ok")
				case errors.As(err, &be):
					log.done(a, "some failed")
				case errors.As(err, &ce):
					log.done(a, fmt.Sprint(ce.Code))
				default:
					log.done(a, err.Error())
				}
			}
		})
	}
	for range 6 {
		text("text get", boundPlain, "get")
	}
	for range 3 {
		text("text set", boundPlain, "set")
		text("text set all", boundAckAll, "set", "Roost-Ack", "all")
	}
	const textRequesters = 6 + 3 + 3
	for range 3 {
		goClient("client get", func(ctx context.Context, c *client.Client, i int) error {
			_, err := c.Get(ctx, key(rand.IntN(keys)))
			return err
		})
		goClient("client set all", func(ctx context.Context, c *client.Client, i int) error {
			_, err := c.Set(ctx, key(rand.IntN(keys)), []byte(fmt.Sprint(i)), client.Ack("all"))
			return err
		})
	}
	for range 2 {
		goClient("client mset all", func(ctx context.Context, c *client.Client, i int) error {
			items := make([]client.SetItem, 20)
			for j := range items {
				items[j] = client.SetItem{Key: key(rand.IntN(keys)), Value: []byte(fmt.Sprint(i)), Options: []client.WriteOption{client.Ack("all")}}
			}
			_, err := c.MSet(ctx, items...)
			return err
		})
		goClient("client mget", func(ctx context.Context, c *client.Client, i int) error {
			ks := make([]string, 20)
			for j := range ks {
				ks[j] = key(rand.IntN(keys))
			}
			_, err := c.MGet(ctx, ks...)
			return err
		})
	}
	stopLoad := sync.OnceFunc(func() { close(stop) })
	t.Cleanup(stopLoad)

	// Kill n2 once the load runs at full speed.
	eventually(t, 10*time.Second, func() error {
		if _, n := log.late(); n < 2000 {
			return fmt.Errorf("%d requests so far", n)
		}
		return nil
	})
	killed := time.Since(log.begin)
	c.kill("n2")
	gone := time.Since(log.begin) // the process has exited
	// Keep the load on until n1 routes without n2, so that requests run
	// through every stage of the failover: in flight at the kill, sent
	// while n2 is still thought alive, while partitions move.
	eventually(t, 10*time.Second, func() error {
		if s := serversOf(t, url); s != "[n1 n3]" {
			return fmt.Errorf("n1 routes over %s", s)
		}
		return nil
	})
	stopLoad()
	// Every request still out gets its answer within its bound, or it is
	// late: poll until none is out, or the last bound has run out.
	for {
		n, until := log.pending()
		if n == 0 || time.Now().After(until) {
			break
		}
		time.Sleep(10 * time.Millisecond) // a poll
	}
	late, total := log.late()
	t.Logf("n2 killed %s into the load; %d requests:\n%s", killed.Round(time.Millisecond), total, log.summary())
	// The text API is routed by partition (the default; docs/PROTOCOL.md,
	// "Routing"): NATS hands a text request straight to its key's primary,
	// so one in flight to n2 when it dies — sent until n2's process has
	// exited and n1's server sees the route drop — is lost with it, and its
	// requester has only its own timeout, as with any NATS service
	// (docs/cluster.md, "Bounds"). A lost request holds its requester,
	// which sends one at a time, until it times out past its bound: there
	// are at most as many as text requesters. Everything else — the text
	// requests sent after the window, every Go-client call — is answered
	// within its bound.
	const lostWindow = 100 * time.Millisecond
	var lost []answered
	late = slices.DeleteFunc(late, func(a answered) bool {
		if strings.HasPrefix(a.kind, "text ") && a.start >= killed-lostWindow && a.start <= gone+lostWindow && (a.took == 0 || a.result == nats.ErrTimeout.Error()) {
			lost = append(lost, a)
			return true
		}
		return false
	})
	for _, a := range lost {
		t.Logf("%s sent %s after the kill: lost with n2 (documented)", a.kind, (a.start - killed).Round(time.Millisecond))
	}
	if len(lost) > textRequesters {
		t.Errorf("%d text requests lost at the kill, more than the %d text requesters could have had in flight", len(lost), textRequesters)
	}
	if len(late) > 0 {
		for i, a := range late {
			if i == 20 {
				t.Errorf("... and %d more", len(late)-i)
				break
			}
			what := "answered " + a.result + " after " + a.took.Round(time.Millisecond).String() + ", over its bound of " + a.bound.String()
			if a.took == 0 {
				what = "unanswered"
			}
			t.Errorf("%s sent %s after the kill: %s", a.kind, (a.start - killed).Round(time.Millisecond), what)
		}
		t.Fatalf("%d of %d requests not answered within their bounds", len(late), total)
	}
}
