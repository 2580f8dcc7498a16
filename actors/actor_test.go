package actors

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counter is a minimal actor: it adds and answers its total.
type counter struct {
	inbox  *Inbox[counterMsg]
	total  int
	exited atomic.Bool // set by the loop as it ends
	hold   chan struct{}
	fail   error // returned by Run on an explode message
}

type counterMsg struct {
	Add     int
	Explode bool
	Block   bool       // wait on hold before handling
	Reply   chan<- int // nil = no answer wanted
}

func newCounter(size int) *counter {
	return &counter{inbox: NewInbox[counterMsg](size), hold: make(chan struct{})}
}

func (c *counter) Run(ctx context.Context) error {
	defer c.exited.Store(true)
	defer c.inbox.Close()
	for {
		select {
		case <-ctx.Done(): // stopped
			return ctx.Err()
		case m := <-c.inbox.Receive(): // a message
			if m.Block {
				<-c.hold
			}
			if m.Explode {
				return c.fail
			}
			c.total += m.Add
			if m.Reply != nil {
				m.Reply <- c.total
			}
		}
	}
}

func add(n int) func(chan<- int) counterMsg {
	return func(r chan<- int) counterMsg { return counterMsg{Add: n, Reply: r} }
}

func TestAskAnswers(t *testing.T) {
	c := newCounter(4)
	var r Runner
	if err := r.Start(context.Background(), c.Run); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	ctx := context.Background()
	for i := 1; i <= 10; i++ {
		got, err := Ask(ctx, c.inbox, add(i))
		if err != nil {
			t.Fatal(err)
		}
		if want := i * (i + 1) / 2; got != want {
			t.Fatalf("after adding 1..%d: got %d, want %d", i, got, want)
		}
	}
}

func TestStopWaitsForLoopAndIsIdempotent(t *testing.T) {
	c := newCounter(4)
	var r Runner
	if err := r.Start(context.Background(), c.Run); err != nil {
		t.Fatal(err)
	}
	if !r.Running() {
		t.Fatal("Running() = false after Start")
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Stop(); err != nil {
				t.Errorf("Stop: %v", err)
			}
			if !c.exited.Load() {
				t.Error("Stop returned before the loop ended")
			}
		}()
	}
	wg.Wait()
	if r.Running() {
		t.Fatal("Running() = true after Stop")
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := r.Start(context.Background(), c.Run); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop = %v, want ErrStopped", err)
	}
}

func TestStartTwice(t *testing.T) {
	c := newCounter(1)
	var r Runner
	if err := r.Start(context.Background(), c.Run); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	if err := r.Start(context.Background(), c.Run); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start = %v, want ErrRunning", err)
	}
}

func TestStopBeforeStart(t *testing.T) {
	var r Runner
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.Done():
	default:
		t.Fatal("Done not closed after Stop of a runner that never started")
	}
	if err := r.Start(context.Background(), newCounter(1).Run); !errors.Is(err, ErrStopped) {
		t.Fatalf("Start after Stop = %v, want ErrStopped", err)
	}
}

func TestStopReturnsLoopError(t *testing.T) {
	boom := errors.New("boom")
	c := newCounter(1)
	c.fail = boom
	var r Runner
	if err := r.Start(context.Background(), c.Run); err != nil {
		t.Fatal(err)
	}
	if err := c.inbox.Send(context.Background(), counterMsg{Explode: true}); err != nil {
		t.Fatal(err)
	}
	<-r.Done()
	if r.Running() {
		t.Fatal("Running() = true after the loop returned")
	}
	if err := r.Stop(); !errors.Is(err, boom) {
		t.Fatalf("Stop = %v, want %v", err, boom)
	}
}

func TestParentContextEndsLoop(t *testing.T) {
	c := newCounter(1)
	var r Runner
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx, c.Run); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-r.Done()
	if !c.exited.Load() {
		t.Fatal("loop still running after parent cancel")
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop after parent cancel = %v, want nil", err)
	}
}

func TestAskAfterStop(t *testing.T) {
	c := newCounter(4)
	var r Runner
	if err := r.Start(context.Background(), c.Run); err != nil {
		t.Fatal(err)
	}
	r.Stop()
	if _, err := Ask(context.Background(), c.inbox, add(1)); !errors.Is(err, ErrStopped) {
		t.Fatalf("Ask after Stop = %v, want ErrStopped", err)
	}
	if err := c.inbox.TrySend(counterMsg{}); !errors.Is(err, ErrStopped) {
		t.Fatalf("TrySend after Stop = %v, want ErrStopped", err)
	}
	if c.inbox.Len() != 0 {
		t.Fatalf("a closed inbox buffered %d messages", c.inbox.Len())
	}
}

func TestAskReturnsWhenLoopEndsWhileWaiting(t *testing.T) {
	c := newCounter(4)
	c.fail = errors.New("ended")
	var r Runner
	if err := r.Start(context.Background(), c.Run); err != nil {
		t.Fatal(err)
	}
	// The first message parks the loop, then ends it; the ask queued behind
	// it is never read, and must not wait forever.
	if err := c.inbox.Send(context.Background(), counterMsg{Block: true, Explode: true}); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := Ask(context.Background(), c.inbox, add(1))
		res <- err
	}()
	waitFor(t, func() bool { return c.inbox.Len() == 1 }) // loop parked, ask queued
	close(c.hold)
	if err := <-res; !errors.Is(err, ErrStopped) {
		t.Fatalf("Ask while the loop ended = %v, want ErrStopped", err)
	}
	if err := r.Stop(); !errors.Is(err, c.fail) {
		t.Fatalf("Stop = %v, want %v", err, c.fail)
	}
}

func TestAskHonoursContext(t *testing.T) {
	c := newCounter(4) // never started: nobody reads
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Ask(ctx, c.inbox, add(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ask with cancelled ctx = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	unbuffered := newCounter(0)
	if _, err := Ask(ctx, unbuffered.inbox, add(1)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ask on a stalled actor = %v, want DeadlineExceeded", err)
	}
}

func TestTrySendFull(t *testing.T) {
	c := newCounter(2)
	for i := range 2 {
		if err := c.inbox.TrySend(counterMsg{Add: i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.inbox.TrySend(counterMsg{}); !errors.Is(err, ErrFull) {
		t.Fatalf("TrySend on a full inbox = %v, want ErrFull", err)
	}
}

func TestManySenders(t *testing.T) {
	c := newCounter(8)
	var r Runner
	if err := r.Start(context.Background(), c.Run); err != nil {
		t.Fatal(err)
	}
	const senders, each = 8, 200
	var wg sync.WaitGroup
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := Ask(context.Background(), c.inbox, add(1)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got, err := Ask(context.Background(), c.inbox, add(0))
	if err != nil {
		t.Fatal(err)
	}
	if got != senders*each {
		t.Fatalf("total %d, want %d", got, senders*each)
	}
	r.Stop()
}

// waitFor polls cond with a deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
