package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
)

// Defaults of the client commands.
const (
	defaultServer  = "nats://127.0.0.1:4222"
	defaultTimeout = 5 * time.Second
)

// clientFlags are the connection flags every client command has. They are
// also read from ROOST_SERVER, ROOST_TOKEN, ROOST_PREFIX and ROOST_TIMEOUT.
type clientFlags struct {
	server  string
	token   string
	prefix  string
	timeout time.Duration
	json    bool // --json: machine-readable output
}

// addClientFlags registers the connection flags and --json on cmd.
func addClientFlags(cmd *cobra.Command, f *clientFlags, jsonHelp string) {
	fs := cmd.Flags()
	fs.StringVar(&f.server, "server", defaultServer, "NATS URL of a Roost node or of the NATS the nodes use")
	fs.StringVar(&f.token, "token", "", "token of the node (its --token)")
	fs.StringVar(&f.prefix, "prefix", wire.DefaultPrefix, "subject prefix of the deployment (the nodes' --prefix)")
	fs.DurationVar(&f.timeout, "timeout", defaultTimeout, "how long to wait for the connection and for each reply")
	fs.BoolVar(&f.json, "json", false, jsonHelp)
}

// connEnvFlags are the flags of a client command read from the environment.
var connEnvFlags = []string{"server", "token", "prefix", "timeout"}

// clientCmd is what a client command's RunE gets: a connected client whose
// every request is bounded by --timeout.
type clientCmd func(ctx context.Context, c *client.Client, args []string) error

// withClient wraps fn into a RunE that binds the connection flags to the
// environment, connects, runs fn, and disconnects.
func (a *app) withClient(f *clientFlags, fn clientCmd) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := bindEnv(cmd, connEnvFlags, a.lookupEnv); err != nil {
			return err
		}
		if f.timeout <= 0 {
			return usageErrorf("--timeout: %s must be positive", f.timeout)
		}
		nc, err := nats.Connect(f.server,
			nats.Name("roost cli"),
			nats.Token(f.token),
			nats.Timeout(f.timeout),
			nats.NoReconnect(),
		)
		if err != nil {
			if errors.Is(err, nats.ErrAuthorization) {
				return fmt.Errorf("cannot connect to %s: %w (wrong or missing --token)", f.server, err)
			}
			if errors.Is(err, nats.ErrNoServers) {
				return fmt.Errorf("cannot connect to %s: %w (is a roost node listening there?)", f.server, err)
			}
			return fmt.Errorf("cannot connect to %s: %w", f.server, err)
		}
		defer nc.Close()
		c, err := client.New(nc,
			client.WithPrefix(f.prefix),
			client.WithTimeout(f.timeout),
			client.WithBatching(false), // one call per process: nothing to batch
			client.WithRouting(false),  // nor a table worth fetching: any node answers
		)
		if err != nil {
			return err
		}
		defer c.Close()
		// No deadline on the context: the client bounds each request by
		// --timeout, so that a long `keys` may take several pages' time.
		return fn(cmd.Context(), c, args)
	}
}

// bindEnv sets the named flags of cmd from ROOST_<FLAG> unless the command
// line set them.
func bindEnv(cmd *cobra.Command, names []string, lookupEnv lookupEnvFunc) error {
	fs := cmd.Flags()
	for _, name := range names {
		f := fs.Lookup(name)
		if f == nil || f.Changed {
			continue
		}
		v, ok := lookupEnv(envName(name))
		if !ok || v == "" {
			continue
		}
		if err := setFrom(fs, name, v, envName(name)); err != nil {
			return err
		}
	}
	return nil
}

// opErr turns an error of a call on key into the message the user sees.
func opErr(key string, err error) error {
	switch {
	case errors.Is(err, client.ErrNotFound):
		return fmt.Errorf("key %q not found", key)
	case errors.Is(err, client.ErrCASMismatch):
		var e *client.Error
		if errors.As(err, &e) && e.Message != "" {
			return errors.New(e.Message) // the node's words: "exists" for --cas 0, else the version it is not at
		}
		return fmt.Errorf("key %q: version does not match --cas (someone else wrote it first)", key)
	case errors.Is(err, client.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("key %q: no reply within --timeout: %w", key, err)
	}
	return err
}

// writeJSON prints v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// itemJSON is the shape of `roost get --json`.
type itemJSON struct {
	Key         string     `json:"key"`
	Value       *string    `json:"value,omitempty"` // the value as text, only when it is valid UTF-8
	ValueBase64 string     `json:"value_base64"`    // the value's exact bytes, always
	Version     uint64     `json:"version"`
	Flags       uint64     `json:"flags"`
	Expires     *time.Time `json:"expires"` // null = never
}

// versionJSON is the shape of `roost set --json` and `roost del --json`.
type versionJSON struct {
	Key     string `json:"key"`
	Version uint64 `json:"version"`
}

func (a *app) newGetCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Print the value of a key",
		Long: `Print the value of KEY, exactly its bytes and nothing else. A missing key is
an error (exit code 1).`,
		Example: `  roost get greeting
  roost get greeting --json
  roost get session:42 --touch 30m`,
		Args: exactArgs(1),
	}
	addClientFlags(cmd, f, `print {"key","value","value_base64","version","flags","expires"}; "value" only when the value is UTF-8`)
	var touch ttlValue
	cmd.Flags().Var(&touch, "touch", "also reset the key's expiry to this long from now (a write at its primary; see roost touch)")
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, args []string) error {
		key := args[0]
		var opts []client.GetOption
		if touch > 0 {
			opts = append(opts, client.AndTouch(time.Duration(touch)))
		}
		it, err := c.Get(ctx, key, opts...)
		if err != nil {
			return opErr(key, err)
		}
		if !f.json {
			_, err := a.stdout.Write(it.Value)
			return err
		}
		out := itemJSON{
			Key:         key,
			ValueBase64: base64.StdEncoding.EncodeToString(it.Value),
			Version:     it.Version,
			Flags:       it.Flags,
		}
		if utf8.Valid(it.Value) {
			s := string(it.Value)
			out.Value = &s
		}
		if !it.Expires.IsZero() {
			e := it.Expires.UTC()
			out.Expires = &e
		}
		return writeJSON(a.stdout, out)
	})
	return cmd
}

func (a *app) newSetCmd() *cobra.Command {
	f := &clientFlags{}
	var (
		ttl   ttlValue
		flags uint64
		cas   uint64
	)
	cmd := &cobra.Command{
		Use:   "set KEY [VALUE|-]",
		Short: "Write a key and print its new version",
		Long: `Write VALUE to KEY and print the key's new version. Without VALUE, or with
"-", the value is read from standard input, byte for byte.

With --cas the write happens only if the key's version is still VERSION, or,
with --cas 0, only if the key does not exist; otherwise it fails (exit code 1).`,
		Example: `  roost set greeting hello
  roost set session:42 --ttl 30m < session.json
  roost set counter 7 --cas 12`,
		Args: rangeArgs(1, 2),
	}
	addClientFlags(cmd, f, `print {"key","version"}`)
	fs := cmd.Flags()
	fs.Var(&ttl, "ttl", "expire the key after this long: a Go duration (1.5s, 10m) or whole seconds; 0 = never")
	fs.Uint64Var(&flags, "flags", 0, "opaque number stored with the value")
	fs.Uint64Var(&cas, "cas", 0, "write only if the key's version is VERSION; 0 = only if the key is absent")
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, args []string) error {
		key := args[0]
		var value []byte
		if len(args) == 2 && args[1] != "-" {
			value = []byte(args[1])
		} else {
			if isTerminal(a.stdin) {
				fmt.Fprintln(a.stderr, "roost: reading the value from the terminal; end it with Ctrl-D")
			}
			var err error
			if value, err = io.ReadAll(a.stdin); err != nil {
				return fmt.Errorf("reading the value from stdin: %w", err)
			}
		}
		opts := []client.WriteOption{client.TTL(time.Duration(ttl)), client.Flags(flags)}
		if cmd.Flags().Changed("cas") {
			opts = append(opts, client.IfVersion(cas))
		}
		version, err := c.Set(ctx, key, value, opts...)
		if err != nil {
			return opErr(key, err)
		}
		return a.printVersion(f.json, key, version)
	})
	return cmd
}

func (a *app) newDelCmd() *cobra.Command {
	f := &clientFlags{}
	var cas uint64
	cmd := &cobra.Command{
		Use:   "del KEY",
		Short: "Delete a key and print the version of the delete",
		Long: `Delete KEY and print the version the delete got. Deleting a missing key
succeeds. With --cas the delete happens only if the key's version is still
VERSION; otherwise it fails (exit code 1).`,
		Example: `  roost del greeting
  roost del counter --cas 13`,
		Args: exactArgs(1),
	}
	addClientFlags(cmd, f, `print {"key","version"}`)
	cmd.Flags().Uint64Var(&cas, "cas", 0, "delete only if the key's version is VERSION")
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, args []string) error {
		key := args[0]
		var opts []client.WriteOption
		if cmd.Flags().Changed("cas") {
			opts = append(opts, client.IfVersion(cas))
		}
		version, err := c.Delete(ctx, key, opts...)
		if err != nil {
			return opErr(key, err)
		}
		return a.printVersion(f.json, key, version)
	})
	return cmd
}

// printVersion prints what set and del answer.
func (a *app) printVersion(asJSON bool, key string, version uint64) error {
	if asJSON {
		return writeJSON(a.stdout, versionJSON{Key: key, Version: version})
	}
	_, err := fmt.Fprintln(a.stdout, version)
	return err
}

func (a *app) newKeysCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "keys [PREFIX]",
		Short: "List the keys, or those starting with PREFIX",
		Long: `List the keys that start with PREFIX (all keys without it), one per line, sorted.

A key that holds spaces, control characters or bytes that are not UTF-8, or
that starts with a double quote, is printed as a quoted Go string ("a\nb"),
as roost watch prints it, so that every line is one key and nothing reaches
the terminal raw. --json prints the keys as they are, as JSON strings.`,
		Example: `  roost keys
  roost keys session: --json`,
		Args: rangeArgs(0, 1),
	}
	addClientFlags(cmd, f, "print a JSON array of strings")
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, args []string) error {
		prefix := ""
		if len(args) == 1 {
			prefix = args[0]
		}
		keys, err := c.Keys(ctx, prefix)
		if err != nil {
			return err
		}
		if f.json {
			if keys == nil {
				keys = []string{}
			}
			return writeJSON(a.stdout, keys)
		}
		for _, k := range keys {
			if _, err := fmt.Fprintln(a.stdout, printableKey(k)); err != nil {
				return err
			}
		}
		return nil
	})
	return cmd
}

// exactArgs is cobra.ExactArgs with the command's usage line in the message.
func exactArgs(n int) cobra.PositionalArgs { return rangeArgs(n, n) }

// rangeArgs is cobra.RangeArgs with the command's usage line in the message.
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("%d arguments given; usage: %s", len(args), cmd.UseLine())
		}
		return nil
	}
}

// isTerminal reports whether r is a terminal rather than a pipe or a file.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
