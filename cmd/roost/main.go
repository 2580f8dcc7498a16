package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/roostkv/roost/node"
)

// Exit codes of every roost command.
const (
	exitOK    = 0 // success
	exitError = 1 // the operation failed: key not found, CAS mismatch, no connection, not supported yet...
	exitUsage = 2 // the command line, environment or config file is wrong; nothing was attempted
)

func main() {
	a := &app{
		stdin:          os.Stdin,
		stdout:         os.Stdout,
		stderr:         os.Stderr,
		lookupEnv:      os.LookupEnv,
		setMemoryLimit: debug.SetMemoryLimit,
	}
	os.Exit(a.run(context.Background(), os.Args[1:]))
}

// app is one run of the roost command: its standard streams and its view of
// the process, so that tests run commands in-process without touching the
// real ones.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      lookupEnvFunc      // os.LookupEnv
	setMemoryLimit func(int64) int64  // debug.SetMemoryLimit
	heapLimit      atomic.Int64       // the limit set last (followHeap)
	onReady        func(n *node.Node) // called by serve once the node serves; nil = nothing (tests)
	stopNode       func(n *node.Node) // stops the node after a signal; nil = n.Stop (tests make it hang)
	stopTimeout    time.Duration      // how long serve waits for stopNode; 0 = defaultStopTimeout

	started bool // a command's RunE was reached: arguments and flags parsed fine
}

// run executes the command line args and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	a.started = false
	root := a.newRootCmd()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	return a.report(cmd, err)
}

// report prints err as one line (plus a hint for usage errors) and returns
// the exit code for it.
func (a *app) report(cmd *cobra.Command, err error) int {
	msg := strings.TrimPrefix(err.Error(), "roost: ")
	var ue usageError
	if !a.started || errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "roost: %s\n", msg)
		if cmd != nil {
			fmt.Fprintf(a.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return exitUsage
	}
	fmt.Fprintf(a.stderr, "roost: %s\n", msg)
	return exitError
}

// usageError marks an error in what the user asked for (a flag value, an
// environment variable, the config file): exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// newRootCmd builds the whole command tree, fresh for every run.
func (a *app) newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "roost",
		Short: "Roost, a distributed in-memory cache on NATS",
		Long: `Roost is a distributed in-memory cache for NATS users. One binary is a whole
node: "roost serve" starts one; the other commands talk to a running node.`,
		Version:       node.Version,
		SilenceErrors: true, // report prints them, one line each
		SilenceUsage:  true, // usage only on --help, a hint on usage errors
		PersistentPreRunE: func(*cobra.Command, []string) error {
			a.started = true
			return nil
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return usageError{errors.New(tidyFlagError(err.Error()))}
	})
	root.AddCommand(
		a.newServeCmd(),
		a.newGetCmd(),
		a.newSetCmd(),
		a.newDelCmd(),
		a.newIncrCmd(),
		a.newTouchCmd(),
		a.newKeysCmd(),
		a.newStatusCmd(),
		a.newMembersCmd(),
		a.newConfigCmd(), // configcmd.go
		a.newWatchCmd(),
		a.newLoadersCmd(),
		a.newHotKeysCmd(),
		a.newBenchCmd(),
		a.newMappingsCmd(),
	)
	return root
}
