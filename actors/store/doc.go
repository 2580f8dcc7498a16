// Package store is a Roost node's local key-value store: sharded maps of
// versioned entries with TTLs, check-and-set, and S3-FIFO eviction under a
// memory limit.
//
// Reads and writes go straight through a per-shard lock (the hot path); an
// actor loop owns the background work (the periodic TTL sweep) and answers
// requests sent to it (AskStats, AskSweep). Versions come from a store-wide
// hybrid logical clock, so they rise across the whole store and across
// restarts. A delete leaves a tombstone carrying its version for
// Config.TombstoneTTL, so that MaxVersion counts deletes; Notify reports
// every change applied. Replication moves Records between stores: Export
// and Versions read them, Apply writes them, last writer wins by version.
// docs/store.md explains the design and its measurements.
//
//	s, err := store.New(store.Config{MaxMemory: 1 << 30})
//	if err != nil { ... }
//	s.Start()
//	defer s.Stop()
//	e, err := s.Set(store.SetRequest{Key: "greeting", Value: []byte("hi"), TTL: time.Minute})
//	e, err = s.Get("greeting") // e.Version, e.Created, e.Flags, e.Expires
//	_, err = s.Set(store.SetRequest{Key: "greeting", Value: []byte("yo"), CheckCAS: true, CAS: e.Version})
package store
