package bus

import (
	"errors"
	"testing"
	"time"
)

func TestAddRouteAtRunTime(t *testing.T) {
	a, err := Open(Config{Name: "a", Listen: "127.0.0.1:-1", ClusterListen: "127.0.0.1:-1", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(Config{Name: "b", Listen: "127.0.0.1:-1", ClusterListen: "127.0.0.1:-1", Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Routes() != 0 || b.Routes() != 0 {
		t.Fatalf("routes before the join: %d, %d", a.Routes(), b.Routes())
	}
	if err := b.AddRoute(a.ClusterAddr()); err != nil {
		t.Fatalf("AddRoute: %v", err)
	}
	if err := b.AddRoute("nats://" + a.ClusterAddr()); err != nil { // the same route again: a no-op
		t.Fatalf("AddRoute again: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.Routes() == 0 || b.Routes() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no route within 5s: %d, %d", a.Routes(), b.Routes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.AddRoute("no-port"); !errors.Is(err, ErrConfig) {
		t.Fatalf("AddRoute without a port = %v, want ErrConfig", err)
	}

	solo, err := Open(Config{Name: "solo", Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer solo.Close()
	if err := solo.AddRoute(a.ClusterAddr()); !errors.Is(err, ErrNoCluster) {
		t.Fatalf("AddRoute on a server without a cluster port = %v, want ErrNoCluster", err)
	}
}
