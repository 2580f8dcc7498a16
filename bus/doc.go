// Package bus is the messaging layer of a Roost node: an embedded nats-server
// (or a connection to an external NATS) and the in-process connection the
// node's actors use. The subjects Roost publishes or subscribes to, and the
// codec and payload types of the binary API, live in bus/wire, which links
// no server, so that clients can import it.
package bus
