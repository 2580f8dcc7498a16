package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/roostkv/roost/client"
)

// cleanupTimeout bounds the removal of a run's keys, which runs on a context
// of its own so that an interrupted run still removes them.
const cleanupTimeout = time.Minute

// What became of the keys a run wrote into a --server deployment
// (Settings.Cleanup); a failed removal reads "failed: " and the reason.
const (
	CleanupRemoved = "removed" // deleted when the run ended
	CleanupKept    = "kept"    // Config.Keep: left in the deployment
	CleanupNone    = "none"    // the nodes were started by the run, and stopped with it
)

// removeKeys deletes, with Config.Server and unless Config.Keep, every key
// of the run's keyspace from the deployment (the preload wrote them all;
// the workers only overwrote them), then checks that none is left under
// Config.KeyPrefix. It runs once: after the last round, or when a failed or
// interrupted run closes.
func (r *runner) removeKeys() {
	switch {
	case r.cleanup != "":
		return
	case r.cfg.Server == "":
		r.cleanup = CleanupNone
		return
	case r.cfg.Keep:
		r.cleanup = CleanupKept
		return
	}
	r.emit(Event{Phase: PhaseCleanup, Target: NameRoost})
	if err := r.deleteKeys(); err != nil {
		r.cleanup = "failed: " + err.Error()
		return
	}
	r.cleanup = CleanupRemoved
}

func (r *runner) deleteKeys() error {
	ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	defer cancel()
	nc, err := dial(r.cfg.Server, r.cfg.Token, "cleanup", r.cfg.Timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	c, err := client.New(nc, client.WithPrefix(r.cfg.Prefix), client.WithTimeout(r.cfg.Timeout), client.WithBatching(false))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.MDelete(ctx, r.keys...); err != nil {
		return fmt.Errorf("delete %d keys under %q: %w", len(r.keys), r.cfg.KeyPrefix, err)
	}
	left, err := c.Keys(ctx, r.cfg.KeyPrefix)
	if err != nil {
		return fmt.Errorf("check that no key is left under %q: %w", r.cfg.KeyPrefix, err)
	}
	if len(left) > 0 {
		return fmt.Errorf("%d keys left under %q after deleting the run's %d, such as %q", len(left), r.cfg.KeyPrefix, len(r.keys), left[0])
	}
	return nil
}
