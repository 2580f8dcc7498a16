// Package bus is the messaging layer of a Roost node: an embedded nats-server
// (or a connection to an external NATS), the in-process connection the node's
// actors use, every subject Roost publishes or subscribes to, and the msgpack
// codec and payload types of the binary API.
//
// Nobody outside this package formats a subject string; they ask a Subjects
// value built from the configured prefix:
//
//	subj := bus.NewSubjects("roost")
//	nc.Request(subj.Get("greeting"), nil, time.Second)
package bus
