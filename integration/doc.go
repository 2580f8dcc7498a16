// Package integration holds Roost's end-to-end tests: real nodes with real
// embedded NATS servers on loopback, reached by real NATS clients, the Go
// client, HTTP and (in cli tests) the built roost binary. Nothing here mocks
// NATS.
package integration
