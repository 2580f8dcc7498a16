package topk

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestSummary(t *testing.T) {
	tests := []struct {
		name   string
		k      int
		stream string // one key per byte
		want   []Counter
	}{
		{"counts below k are exact", 3, "aababc", []Counter{{"a", 3, 0}, {"b", 2, 0}, {"c", 1, 0}}},
		{"a new key takes the smallest counter", 2, "aaabc", []Counter{{"a", 3, 0}, {"c", 2, 1}}},
		{"a taken-over key climbs", 2, "aabcc", []Counter{{"c", 3, 1}, {"a", 2, 0}}},
		{"k of 1 keeps the latest key", 1, "abc", []Counter{{"c", 3, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.k)
			for _, b := range []byte(tt.stream) {
				s.Observe(string(b), 1)
			}
			got := s.Top(-1)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("Top = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTopCutsAndHalve(t *testing.T) {
	s := New(4)
	for i, n := range []uint64{8, 4, 2, 1} {
		s.Observe(fmt.Sprint("k", i), n)
	}
	if top := s.Top(2); len(top) != 2 || top[0].Key != "k0" || top[1].Key != "k1" {
		t.Fatalf("Top(2) = %v", top)
	}
	s.Halve()
	if got := fmt.Sprint(s.Top(-1)); got != "[{k0 4 0} {k1 2 0} {k2 1 0}]" || s.Len() != 3 {
		t.Fatalf("after Halve: %v (len %d)", got, s.Len())
	}
	s.Observe("k3", 1) // the index still finds keys after Halve rebuilt the heap
	s.Observe("k0", 1)
	if got := fmt.Sprint(s.Top(1)); got != "[{k0 5 0}]" {
		t.Fatalf("after Halve and Observe: %v", got)
	}
}

// The space-saving guarantees, on skewed random streams: every key seen
// more than N/k times is in the summary, and every count c with error e
// brackets the truth: c-e <= true <= c.
func TestGuaranteesOnZipfStreams(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		zipf := rand.NewZipf(rng, 1.1, 1, 10_000)
		const k, n = 50, 20_000
		s := New(k)
		truth := map[string]uint64{}
		for range n {
			key := fmt.Sprint("key", zipf.Uint64())
			truth[key]++
			s.Observe(key, 1)
		}
		in := map[string]Counter{}
		for _, c := range s.Top(-1) {
			in[c.Key] = c
			if tr := truth[c.Key]; tr > c.Count || c.Count-c.Error > tr {
				t.Fatalf("seed %d: %s counted %d (error %d), truly %d", seed, c.Key, c.Count, c.Error, tr)
			}
		}
		for key, tr := range truth {
			if _, ok := in[key]; tr > n/k && !ok {
				t.Fatalf("seed %d: %s seen %d > N/k = %d times, missing from the summary", seed, key, tr, n/k)
			}
		}
		if top := s.Top(1); top[0].Key != "key0" {
			t.Fatalf("seed %d: top key %v, want key0", seed, top)
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, 100_000)
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprint("key", zipf.Uint64())
	}
	s := New(64)
	b.ResetTimer()
	for i := range b.N {
		s.Observe(keys[i%len(keys)], 1)
	}
}
