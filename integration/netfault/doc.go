// Package netfault injects network faults into tests: a Proxy is a TCP
// forwarder the test controls. Put it between two servers, let them talk
// through it, then Cut to drop every connection (and every new one at once)
// and Heal to let them through again.
//
//	p, err := netfault.NewProxy(serverAddr) // listens on 127.0.0.1, random port
//	if err != nil { ... }
//	defer p.Close()
//	dial(p.Addr()) // reaches serverAddr
//	p.Cut()        // live connections closed; new ones accepted and closed
//	p.Heal()       // new connections are forwarded again
package netfault
