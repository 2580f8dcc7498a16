package harness

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Phase is a step of a run.
type Phase string

// The phases of a run, in order.
const (
	PhasePreload Phase = "preload" // writing the keyspace into a target
	PhaseWarmup  Phase = "warmup"  // a target runs unmeasured
	PhaseRound   Phase = "round"   // a target's turn in a round, measured
	PhaseCleanup Phase = "cleanup" // deleting the run's keys from a --server deployment
	PhaseDone    Phase = "done"    // the run is over
)

// Event tells a progress display where a run is. Config.Progress gets one at
// the start and at the end of every phase, and every 200 ms in between,
// always from the same goroutine.
type Event struct {
	Phase         Phase
	Target        string        // the target of the phase; "" for PhaseDone
	Round, Rounds int           // PhaseRound: which round, from 1, of how many
	Elapsed       time.Duration // scheduled time done, of all warmups and rounds
	Total         time.Duration // scheduled time of all warmups and rounds
	End           bool          // the phase has ended; OpsPerSec is its throughput
	OpsPerSec     float64
}

// Bar returns a Config.Progress that draws one line on w (a terminal),
// redrawn in place: a bar over the scheduled time, the phase, and the last
// phase's throughput. Call the returned finish once the run is over.
func Bar(w io.Writer) (progress func(Event), finish func()) {
	var bar *progressbar.ProgressBar
	last := ""
	progress = func(e Event) {
		switch {
		case e.Phase == PhasePreload:
			fmt.Fprintf(w, "\rpreloading %s...", e.Target)
			return
		case e.Phase == PhaseCleanup && bar != nil:
			bar.Describe("removing the run's keys...")
			return
		case e.Phase == PhaseCleanup:
			fmt.Fprint(w, "\rremoving the run's keys...")
			return
		}
		if bar == nil {
			fmt.Fprint(w, "\r\033[K")
			bar = progressbar.NewOptions64(e.Total.Milliseconds(),
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionShowElapsedTimeOnFinish(),
				progressbar.OptionClearOnFinish(),
			)
		}
		if e.End {
			last = fmt.Sprintf("  last: %s %s ops/s", e.Target, Thousands(e.OpsPerSec))
		}
		bar.Describe(describe(e) + last)
		_ = bar.Set64(e.Elapsed.Milliseconds())
	}
	finish = func() {
		if bar != nil {
			_ = bar.Finish()
		}
		fmt.Fprint(w, "\r\033[K")
	}
	return progress, finish
}

// Lines returns a Config.Progress that writes one plain line per finished
// phase on w, for logs and pipes where a redrawn bar would be noise.
func Lines(w io.Writer) func(Event) {
	return func(e Event) {
		switch {
		case e.Phase == PhasePreload:
			fmt.Fprintf(w, "preloading %s\n", e.Target)
		case e.Phase == PhaseCleanup:
			fmt.Fprintf(w, "removing the run's keys from %s\n", e.Target)
		case e.End:
			fmt.Fprintf(w, "%s %12s ops/s\n", describe(e), Thousands(e.OpsPerSec))
		}
	}
}

func describe(e Event) string {
	switch e.Phase {
	case PhaseWarmup:
		return fmt.Sprintf("warmup %-6s", e.Target)
	case PhaseRound:
		return fmt.Sprintf("round %d/%d %-6s", e.Round, e.Rounds, e.Target)
	}
	return string(e.Phase)
}
