package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
)

// counterJSON is the shape of `roost incr --json`.
type counterJSON struct {
	Key     string `json:"key"`
	Value   int64  `json:"value"`
	Version uint64 `json:"version"`
}

func (a *app) newIncrCmd() *cobra.Command {
	f := &clientFlags{}
	var (
		ttl ttlValue
		by  string
		ack string
	)
	cmd := &cobra.Command{
		Use:   "incr KEY [DELTA]",
		Short: "Add to a counter and print its new value",
		Long: `Add DELTA (a signed decimal integer, 1 without it) to the counter KEY and
print its new value. A missing key counts as 0 and is created, with --ttl
when given; --ttl does nothing to a counter that exists. A key that holds
anything but a decimal integer is left as it is and the command fails
(exit code 1), as it does when the sum would overflow a signed 64-bit integer.

A negative DELTA looks like a flag: write it after "--", or with --by.`,
		Example: `  roost incr page:views
  roost incr page:views 10
  roost incr stock:42 -- -3
  roost incr stock:42 --by -3 --ack all
  roost incr rate:ip:10.0.0.1 --ttl 1m`,
		Args: rangeArgs(1, 2),
	}
	addClientFlags(cmd, f, `print {"key","value","version"}`)
	fs := cmd.Flags()
	fs.Var(&ttl, "ttl", "expire a counter this increment creates after this long: a Go duration or whole seconds; 0 = never")
	fs.StringVar(&by, "by", "", "the delta, when it is negative (same as DELTA)")
	fs.StringVar(&ack, "ack", wire.AckPrimary, "answer once the primary applied it (primary) or every live owner did (all)")
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, args []string) error {
		key := args[0]
		delta := int64(1)
		text := by
		if len(args) == 2 {
			if by != "" {
				return usageErrorf("give the delta once: as DELTA or with --by")
			}
			text = args[1]
		}
		if text != "" {
			d, err := strconv.ParseInt(text, 10, 64)
			if err != nil {
				return usageErrorf("bad delta %q: want a signed decimal integer", text)
			}
			delta = d
		}
		v, version, err := c.Incr(ctx, key, delta, client.TTL(time.Duration(ttl)), client.Ack(ack))
		if err != nil {
			return counterErr(key, err)
		}
		if f.json {
			return writeJSON(a.stdout, counterJSON{Key: key, Value: v, Version: version})
		}
		_, err = fmt.Fprintln(a.stdout, v)
		return err
	})
	return cmd
}

func (a *app) newTouchCmd() *cobra.Command {
	f := &clientFlags{}
	var ttl ttlValue
	cmd := &cobra.Command{
		Use:   "touch KEY --ttl TTL",
		Short: "Reset a key's expiry and print its new version",
		Long: `Make KEY expire TTL from now, keeping its value and flags, and print the
key's new version (a touch is a write). A missing key is an error (exit code 1).
roost get KEY --touch TTL reads and touches in one call.`,
		Example: `  roost touch session:42 --ttl 30m`,
		Args:    exactArgs(1),
	}
	addClientFlags(cmd, f, `print {"key","version"}`)
	cmd.Flags().Var(&ttl, "ttl", "the new expiry, from now: a Go duration (1.5s, 10m) or whole seconds; required")
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, args []string) error {
		if ttl <= 0 {
			return usageErrorf("touch needs --ttl above 0")
		}
		key := args[0]
		version, err := c.Touch(ctx, key, time.Duration(ttl))
		if err != nil {
			return opErr(key, err)
		}
		return a.printVersion(f.json, key, version)
	})
	return cmd
}

// counterErr puts an incr's failure in the user's words: a 409 carries the
// node's reason (not a counter, or an overflow).
func counterErr(key string, err error) error {
	var e *client.Error
	if errors.Is(err, client.ErrCASMismatch) && errors.As(err, &e) && e.Message != "" {
		return errors.New(e.Message)
	}
	return opErr(key, err)
}
