package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

// changeJSON is the shape of `roost watch --json`, one object per line.
type changeJSON struct {
	Op      string `json:"op"` // "set", "del", "expired" or "evicted"
	Key     string `json:"key"`
	Version uint64 `json:"version"`
	Node    string `json:"node,omitempty"` // expired, evicted: the node that announced it
}

func (a *app) newWatchCmd() *cobra.Command {
	f := &clientFlags{}
	var prefixMatch bool
	cmd := &cobra.Command{
		Use:   "watch [KEY | PREFIX*]",
		Short: "Print changes to a key, or to the keys under a prefix, as they happen",
		Long: `Print one line per change of KEY as the cluster applies it, until interrupted
(Ctrl-C: exit code 0):

  set KEY version V
  del KEY version V
  expired KEY version V on NODE    (nodes run with --feed-expiry)
  evicted KEY version V on NODE    (nodes run with --feed-expiry)

An argument ending in "*" watches every key that starts with what comes
before the "*"; with --prefix-match the whole argument is the prefix (for
prefixes that end in a real "*"). No argument watches every key.

Changes come from the cluster's change feed over NATS: each is announced once,
at most once, by the node that applied it. Expirations and evictions are
announced only by nodes run with --feed-expiry: an expiry by the primary of
the key's partition, an eviction by the node that evicted its copy (version
V is the version that left). Deleting an absent key changes nothing. Two changes of one key made
at the same moment may print out of order: their versions tell the order.`,
		Example: `  roost watch config/db
  roost watch 'sessions/*'
  roost watch --json | jq -c 'select(.op == "del")'`,
		Args: rangeArgs(0, 1),
	}
	addClientFlags(cmd, f, `print {"op","key","version"} per change, one per line`)
	cmd.Flags().BoolVar(&prefixMatch, "prefix-match", false, `watch every key that starts with the argument (as a trailing "*" does)`)
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, args []string) error {
		key, prefix := "", true
		if len(args) == 1 {
			key, prefix = args[0], prefixMatch
			if !prefix && strings.HasSuffix(key, "*") {
				key, prefix = strings.TrimSuffix(key, "*"), true
			}
		}
		return a.watch(ctx, c.Conn(), wire.NewSubjects(f.prefix).Changes(), key, prefix, f.json)
	})
	return cmd
}

// watch prints the changes of key (or under it, with prefix) heard on
// subject until a signal, or the context, ends it.
func (a *app) watch(ctx context.Context, nc *nats.Conn, subject, key string, prefix, asJSON bool) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	lost := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(lost) })
	msgs := make(chan *nats.Msg, 4096)
	sub, err := nc.ChanSubscribe(subject, msgs)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("subscribe %s: %w", subject, err)
	}
	what := fmt.Sprintf("key %q", key)
	switch {
	case prefix && key == "":
		what = "every key"
	case prefix:
		what = fmt.Sprintf("keys starting with %q", key)
	}
	fmt.Fprintf(a.stderr, "roost: watching %s; Ctrl-C to stop\n", what)
	for {
		select {
		case <-ctx.Done(): // interrupted: a normal end
			return nil
		case <-lost: // the connection is gone
			return errors.New("connection to the node lost")
		case m := <-msgs: // a change somewhere in the cluster
			cs, err := node.DecodeChanges(m.Data)
			if err != nil {
				fmt.Fprintf(a.stderr, "roost: skipping an unreadable change: %v\n", err)
				continue
			}
			for _, c := range cs {
				if c.Key != key && (!prefix || !strings.HasPrefix(c.Key, key)) || strings.HasPrefix(c.Key, node.ReservedPrefix) {
					continue // not asked for, or Roost's own key (the catalog's, say)
				}
				if err := a.printChange(c, asJSON); err != nil {
					return err
				}
			}
		}
	}
}

// printChange prints one change as a line of text or JSON.
func (a *app) printChange(c node.Change, asJSON bool) error {
	op, node := "set", ""
	switch {
	case c.Event != nil:
		op, node = c.Event.Reason, c.Event.Node
	case c.Deleted:
		op = "del"
	}
	if asJSON {
		return writeJSON(a.stdout, changeJSON{Op: op, Key: c.Key, Version: c.Version, Node: node})
	}
	on := ""
	if node != "" {
		on = " on " + printableKey(node)
	}
	_, err := fmt.Fprintf(a.stdout, "%s %s version %d%s\n", op, printableKey(c.Key), c.Version, on)
	return err
}
