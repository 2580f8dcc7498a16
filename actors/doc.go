// Package actors is Roost's small actor runtime: an Inbox (a buffered channel
// of messages that knows when its owner has gone), Ask (send a message that
// carries a reply channel and wait for the answer, the context or the owner's
// end), and a Runner that runs one actor loop in its own goroutine and stops
// it cleanly.
//
// An actor is a struct with unexported state and a Run(ctx) loop that selects
// on its inbox, its ticker and ctx.Done(); only that loop touches the state.
//
//	type counter struct {
//		inbox *actors.Inbox[getCount]
//		n     int
//	}
//	type getCount struct{ Reply chan<- int }
//
//	func (c *counter) Run(ctx context.Context) error {
//		defer c.inbox.Close() // askers stop waiting once the loop is gone
//		for {
//			select {
//			case <-ctx.Done(): // stopped
//				return nil
//			case m := <-c.inbox.Receive(): // a request
//				m.Reply <- c.n
//			}
//		}
//	}
//
//	c := &counter{inbox: actors.NewInbox[getCount](16)}
//	var r actors.Runner
//	r.Start(context.Background(), c.Run)
//	n, err := actors.Ask(ctx, c.inbox, func(reply chan<- int) getCount { return getCount{reply} })
//	r.Stop() // idempotent; returns once Run has returned
package actors
