// Package harness is the engine of `roost bench`: it runs a workload against
// Roost and, in the same run, against the baselines Roost is judged by, and
// reports throughput and latency of each.
//
//	cfg := harness.DefaultConfig()
//	cfg.Workload, cfg.Compare, cfg.Duration = harness.WorkloadSet, true, 6*time.Second
//	rep, err := harness.Run(ctx, cfg)
//	if err != nil {
//		return err
//	}
//	rep.WriteTable(os.Stdout) // or WriteJSON; WritePlot(w, harness.PlotPNG) draws a chart
//
// # Nodes
//
// With no Config.Server the harness starts Config.Nodes nodes, clustered,
// waits until each routes over all of them, and points the targets at the
// first. By default they run in this process. With Config.Procs they are
// `roost serve` processes of Config.Exec (`roost bench --procs` runs its own
// executable), each joining the first through the CLUSTER address it prints;
// they get this process's environment less ROOST_* settings, the token
// through ROOST_TOKEN. The harness then also waits until every node leads
// its primaries, ready. It stops them when the run ends, fails or is
// interrupted: SIGTERM, and a kill if one still runs 5 s later. A process
// that exits before it serves fails the run with the end of its stderr.
//
// # Targets
//
// The roost target reaches Roost through a Path: the NATS text API with plain
// nats.go requests ("text"), the Go client ("client", batching on or off), or
// the consul KV HTTP API ("http": GET /v1/kv/<key>?raw, PUT /v1/kv/<key>).
// Each target's workers share one client connection of their own,
// Config.Concurrency requests in flight; over HTTP/1.1, which has one request
// in flight per connection, they share a pool of that many keep-alive
// connections instead. For "http" the node the harness starts serves HTTP on
// a free loopback port; with Config.Server, Config.HTTPAddr names a node's.
// The preload goes over NATS whatever the path, and the HTTP API has no ack
// mode, so "http" goes with Config.Ack = wire.AckPrimary only.
//
// With Config.Compare, two baselines run the same workload with the same
// keys, values and concurrency:
//
//   - echo: a raw NATS responder on the same bus that answers a get with a
//     value of Config.ValueSize bytes and a set with an empty reply: what a
//     cache that did no work at all would cost. When the harness starts the
//     node, the responder has an in-process connection to the node's embedded
//     server, as the node's own API has; with Config.Server, or a node
//     process (Config.Procs, and a note in the report says so), it has a TCP
//     connection of its own to that server. Its subjects are fixed per
//     operation by default (the NATS ceiling: the server's subject cache
//     always hits), or carry the key as Roost's text API does
//     (Config.EchoSubject = EchoKeyed).
//   - kv: NATS JetStream KV, memory storage, one replica, Get and Put with
//     nats.go's jetstream package. A node's embedded server has no
//     JetStream, so when the harness starts the node it starts a second
//     nats-server in the same process, on loopback, with the same payload
//     limit and token and JetStream on, and the KV bucket lives there. The
//     two servers never run at once (see Interleaving), so neither steals
//     the other's CPU. With Config.Server the bucket goes on that server if
//     it has JetStream, else the kv row is skipped with a note;
//     Config.KVServer names any other server for it.
//
// # Interleaving
//
// Shared machines drift: a compile elsewhere can halve a figure for a few
// seconds. So targets take turns: every target warms up once, then the run
// is split into rounds of Config.Round, and each round runs echo, roost, kv
// until each has had Config.Duration. Within a round the targets alternate
// in turns of Config.Turn (250 ms by default; 0 = the whole round in one
// turn, echo, roost, kv one after the other, as before), in an order that
// has each target follow each other one equally often (turnOrder), so that
// the load of the moment and what one target leaves behind (its garbage,
// JetStream's timers) land on all alike. A row's ops/s is
// the median of its rounds' throughputs; its latencies come from per-worker
// HDR histograms merged at the end. Ratios (roost/echo, roost/kv, kv/echo)
// divide those ops/s figures, the median rounds, so that a ratio always
// agrees with the throughputs printed and plotted beside it; the
// interleaving is what keeps a slow stretch of machine time from landing on
// one target. (Before, they were medians of per-round ratios, which could
// disagree visibly with the ops/s beside them.) Two steadier figures go
// beside them: the median over the turns of each turn's ratio
// (Row.TurnRatioToEcho), and, with the nodes in this process, the CPU time
// of the process per operation and echo's over roost's (Row.CPUPerOp,
// Row.CPURatioToEcho), which the load of other work moves far less than
// throughput.
//
// # Keys
//
// Every key the run writes, in Roost and in the KV bucket, starts with
// Config.KeyPrefix: by default "bench-", a random run id and a dot, new each
// run, so that a run touches no key of anyone else's; the report names it
// (Settings.KeyPrefix). Against Config.Server the run deletes its keys from
// the deployment when it ends, fails or is interrupted, and checks that none
// is left under the prefix; Config.Keep leaves them. Settings.Cleanup says
// which happened. Nodes the harness starts, and the KV bucket, go with the
// run.
package harness
