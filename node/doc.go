// Package node assembles a Roost node from a Config: the bus (an embedded
// nats-server or an external NATS), the store actor, and the API front that
// answers the NATS text and binary APIs and HTTP.
//
//	cfg := node.DefaultConfig()
//	cfg.Listen = "127.0.0.1:-1" // random port
//	n, err := node.New(cfg)
//	if err != nil { ... }
//	if err := n.Start(); err != nil { ... }
//	defer n.Stop()
//	fmt.Println("NATS clients connect to", n.ClientURL())
package node
