package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/nats-io/nats.go"

	"github.com/roostkv/roost/bench/harness"
	"github.com/roostkv/roost/bus"
	"github.com/roostkv/roost/node"
)

// echoBase is the subject base the echo process answers under.
const echoBase = "scaling-echo"

// echoMaxPayload is a node's payload limit with its default --max-value
// (node.Config: the value plus room for headers and batch framing), so that
// the echo's server takes what the node's takes.
const echoMaxPayload = node.DefaultMaxValue + 64<<10

// serveEcho is the `echo` subcommand: the fair echo of a `roost serve`
// process. It is shaped like a node: an embedded nats-server (Roost's bus,
// same limits) on a free loopback port, and the responder on an in-process
// connection, as a node's handlers are; the Go soft memory limit is the one
// serve sets for the default --max-memory, and GOGC is inherited from the
// environment as the node's is. It answers <echoBase>.get with valueSize
// bytes allocated once (no copy per request) and <echoBase>.set empty. It
// prints "NATS <url>" and serves until SIGTERM (which the parent-death
// signal sends too).
func serveEcho(valueSize int) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(node.SoftMemoryLimit(node.DefaultMaxMemory))
	}
	b, err := bus.Open(bus.Config{Name: "scaling-echo", Listen: "127.0.0.1:-1", MaxPayload: echoMaxPayload})
	if err != nil {
		return err
	}
	defer b.Close()
	nc, err := b.Connect(nats.Name("scaling echo responder"))
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := harness.ServeEcho(nc, echoBase, harness.EchoFixed, valueSize); err != nil {
		return err
	}
	fmt.Printf("NATS %s\n", b.ClientURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	return nil
}
