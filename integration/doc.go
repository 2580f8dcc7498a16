// Package integration holds Roost's end-to-end tests: real nodes with real
// embedded NATS servers on loopback, reached by real NATS clients, the Go
// client, HTTP and (in cli tests) the built roost binary. Nothing here mocks
// NATS.
//
// Most tests wait on heartbeats, timeouts and other processes rather than
// the CPU (a three-node in-process test uses about a tenth of a core), so
// each test starts with t.Parallel() and go test runs -parallel of them at
// once: 3 unless -parallel is given (TestMain sets it, parallel_test.go), or
// GOMAXPROCS under -race. In-process clusters so share a loaded machine; a
// node does not count its own stalls as its peers' silence (see
// actors/membership, "Our own stalls"), so starvation does not move
// partitions under a test. A test stays serial,
// and says why in a "// Not parallel:" comment in its first line, when it
// measures the process (its heap), loads the machine on purpose, or holds a
// node to a time bound while processes are killed (kill -9 schedules, an
// answer within N s of a kill): go test runs the serial tests first, alone,
// and the parallel ones after them. A new test is parallel unless one of
// these holds.
package integration
