// Package bench holds Roost's benchmarks. Run them with
//
//	go test -run '^$' -bench . -benchtime 2s -count 3 ./bench/
//
// NATS benchmarks start a node in the same process and, beside it on the same
// embedded server, a raw NATS echo responder: the ceiling for any NATS
// request-reply cache. Compare Roost to it as a ratio within one run; the
// machines are shared and absolute figures drift.
package bench
