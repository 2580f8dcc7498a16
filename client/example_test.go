package client_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/roostkv/roost/client"
)

func Example() {
	// A NATS server with a stand-in for a Roost node; with a real node, use
	// the address of its --listen.
	srv, err := newServer("")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown()
	_, stop, err := newFakeNode(srv.ClientURL(), "")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()

	ctx := context.Background()
	c, err := client.Connect(srv.ClientURL())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	ver, _ := c.Set(ctx, "greeting", []byte("hello"), client.TTL(time.Hour))
	it, _ := c.Get(ctx, "greeting")
	fmt.Println(string(it.Value), it.Version == ver)

	_, err = c.CompareAndSwap(ctx, "greeting", []byte("hi"), ver+1)
	fmt.Println(errors.Is(err, client.ErrCASMismatch))

	_, err = c.Get(ctx, "nobody")
	fmt.Println(errors.Is(err, client.ErrNotFound))

	items, _ := c.MGet(ctx, "greeting", "nobody")
	fmt.Println(items[0].Found(), items[1].Found())
	// Output:
	// hello true
	// true
	// true
	// true false
}
