// Package wire holds what crosses the bus and what clients need of it: every
// subject Roost publishes or subscribes to, the msgpack codec, and the
// payload types of the binary API. It links no NATS server, so the Go
// client imports it without pulling the server in.
//
// Nobody outside this package formats a subject string; they ask a Subjects
// value built from the configured prefix:
//
//	subj := wire.NewSubjects("roost")
//	nc.Request(subj.Get("greeting"), nil, time.Second)
package wire
