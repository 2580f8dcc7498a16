// Package membership tells a Roost node who is in its cluster. Every node
// publishes a heartbeat on the bus (wire.Subjects.Heartbeat, every
// Config.Interval) and listens to everyone else's; from the beats and their
// absence it keeps a View: each member with its status, alive, suspect (silent
// for SuspectAfter beats), dead (silent for DeadAfter beats) or left (it said
// so, or an operator forced it out). A peer started with another partition
// count (or another --placement-tag) is refused, loudly, and never enters the view.
//
// Timing. A member's silence is the local time since its last beat arrived
// (never the sender's clock). It turns suspect once its silence reaches
// SuspectAfter of the beat periods it announces in its beats, and dead once it
// reaches DeadAfter of them; both bounds are inclusive, and any beat makes it
// alive again. Silences are judged on every tick, Interval/10 by default, so a
// verdict comes at most a tenth of an interval late: with the defaults a
// process killed with -9 is dead 3.0–3.05 s after its last beat, which is
// 2.5–3.05 s after the kill — while the judging node runs on time.
//
// Our own stalls. A tick that comes more than two tick periods after the loop
// last ran (a tick, a beat or a request) shows that this node stalled: CPU
// starvation, a GC pause, a suspended process. The beats that arrived
// meanwhile wait unread in our queue: a tick first applies every beat waiting
// there (the loop's select would otherwise take the tick before them half the
// time), then credits the excess to every live member it still has not
// heard: its silence counts net of our stalls since its last beat, and its
// next beat clears the credit. Each tick so counts at most two tick periods
// of silence, however late: a member silent for good is dead after at most
// 5×DeadAfter late ticks (30 with the defaults). The credit is capped at
// 7×DeadAfter of the member's periods, so every node finds it dead at most
// 8×DeadAfter periods (24 s) after its last beat, on its first tick after
// that (as hashicorp/memberlist's awareness scales its timeouts by at most 8).
//
// A beat with Leaving marks its sender left at
// once, for good: that process ID never comes back (a restart has a new ID
// and a higher incarnation, and replaces it). Dead and left members leave the
// view ForgetAfter after they became so.
//
// The logic is a pure state machine (step.go): it is driven by messages that
// carry the time, and returns the beat to publish, what to log and whether the
// view changed. The actor loop (actor.go) does the I/O: the NATS subscription,
// the ticker, publishing, logging and delivering views.
//
//	m, err := membership.New(membership.Config{
//		Self: membership.Member{
//			ID: nuid.Next(), Name: "node-a", Incarnation: uint64(time.Now().UnixMilli()),
//			Role: "server", Addr: b.ClientURL(), Partitions: 271,
//		},
//		Conn:     b.Conn(),
//		Subjects: wire.NewSubjects(""),
//	})
//	if err != nil { ... }
//	if err := m.Start(); err != nil { ... }
//	views, cancel := m.Subscribe() // the current view at once, then every change
//	defer cancel()
//	go func() {
//		for v := range views { // closed by cancel or Stop
//			servers := v.Live("server")
//			...
//		}
//	}()
//	...
//	m.Leave(ctx) // on SIGTERM: peers mark us left at once
//	m.Stop()
package membership
