package node

import (
	"strconv"
	"testing"

	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
)

// BenchmarkGetPath measures a get as the primary executes it (getResult:
// checks, store, and what follows a store's answer: hot-key sampling, the
// loader check on a miss), with no NATS around it: the part of a get this
// node's code costs. Compare two builds with benchstat.
//
//	go test -run '^$' -bench GetPath -count 10 ./node/
func BenchmarkGetPath(b *testing.B) {
	const keys = 1024
	n, names := benchNode(b, keys)
	absent := make([]string, keys)
	for i := range keys {
		absent[i] = "absent" + strconv.Itoa(i)
	}
	b.Run("hit", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if r := n.getResult(names[i%keys]); r.Code != wire.CodeOK {
				b.Fatalf("hit: %+v", r)
			}
			i++
		}
	})
	b.Run("miss", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if r := n.getResult(absent[i%keys]); r.Code != wire.CodeNotFound {
				b.Fatalf("miss: %+v", r)
			}
			i++
		}
	})
}

// BenchmarkReadHooks measures what this branch adds to a get with no
// loader listening, alone: afterRead on a miss (hot-key sampling, the
// interest lookup) and on a hit, and mayLoad (the check that decides
// whether a handler answers from its own goroutine).
//
//	go test -run '^$' -bench ReadHooks -count 5 ./node/
func BenchmarkReadHooks(b *testing.B) {
	n, _ := benchNode(b, 0)
	const keys = 1024
	absent := make([]string, keys)
	for i := range keys {
		absent[i] = "absent" + strconv.Itoa(i)
	}
	b.Run("miss", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := n.afterRead(absent[i%keys], store.Entry{}, store.ErrNotFound); err != store.ErrNotFound {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("hit", func(b *testing.B) {
		e := store.Entry{Key: "k", Version: 1}
		i := 0
		for b.Loop() {
			if _, err := n.afterRead(absent[i%keys], e, nil); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("mayLoad", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if n.mayLoad(absent[i%keys]) {
				b.Fatal("a loader listens")
			}
			i++
		}
	})
	b.Run("hot-observe", func(b *testing.B) {
		i := 0
		for b.Loop() {
			n.hot.observe(absent[i%keys])
			i++
		}
	})
}

// benchNode starts a node alone on loopback and sets keys keys, "key0"...,
// of 100-byte values; it returns the node and the keys.
func benchNode(b *testing.B, keys int) (*Node, []string) {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Name, cfg.Listen, cfg.HTTP = "bench", "127.0.0.1:-1", HTTPOff
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(n.Stop)
	names := make([]string, keys)
	value := make([]byte, 100)
	for i := range keys {
		names[i] = "key" + strconv.Itoa(i)
		op := wire.Request{Op: wire.OpSet, Key: names[i], Value: value}
		if r := n.apply(&op, ""); r.Code != wire.CodeOK {
			b.Fatalf("set: %+v", r)
		}
	}
	return n, names
}
