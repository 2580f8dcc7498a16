// Package topk finds the most frequent keys of a stream in fixed memory,
// with the space-saving algorithm (Metwally, Agrawal and El Abbadi,
// "Efficient Computation of Frequent and Top-k Elements in Data Streams",
// ICDT 2005): k counters; a key not counted takes the smallest counter's
// place, inheriting its count as its possible overcount. Every key whose
// true count exceeds N/k (N = keys seen) is in the summary, and a count is
// never under the truth nor over it by more than the key's Error.
//
// A Summary is not safe for concurrent use: the caller locks.
//
//	s := topk.New(64)
//	for _, key := range reads {
//		s.Observe(key, 1)
//	}
//	for _, c := range s.Top(10) {
//		fmt.Println(c.Key, c.Count, c.Error)
//	}
package topk

import (
	"cmp"
	"slices"
	"strings"
)

// Counter is one key's estimate: its true count lies in
// [Count-Error, Count].
type Counter struct {
	Key   string
	Count uint64 // estimated occurrences, never below the truth
	Error uint64 // how much of Count may be another key's (inherited on takeover)
}

// Summary holds k counters.
type Summary struct {
	k     int
	index map[string]*item // key → its counter
	heap  []*item          // min-heap by Count
}

// item is a counter and its position in the heap.
type item struct {
	Counter
	pos int
}

// New returns a summary of k counters (k < 1 is taken as 1).
func New(k int) *Summary {
	k = max(k, 1)
	return &Summary{k: k, index: make(map[string]*item, k), heap: make([]*item, 0, k)}
}

// Observe counts n occurrences of key. The summary keeps key (a string
// is immutable; no copy is made).
func (s *Summary) Observe(key string, n uint64) {
	if it, ok := s.index[key]; ok {
		it.Count += n
		s.down(it.pos)
		return
	}
	if len(s.heap) < s.k {
		it := &item{Counter: Counter{Key: key, Count: n}, pos: len(s.heap)}
		s.heap = append(s.heap, it)
		s.index[key] = it
		s.up(it.pos)
		return
	}
	// Take over the smallest counter.
	it := s.heap[0]
	delete(s.index, it.Key)
	it.Error = it.Count
	it.Count += n
	it.Key = key
	s.index[key] = it
	s.down(0)
}

// Top returns up to n counters (n < 0: all), highest count first (ties by key).
func (s *Summary) Top(n int) []Counter {
	out := make([]Counter, len(s.heap))
	for i, it := range s.heap {
		out[i] = it.Counter
	}
	slices.SortFunc(out, func(a, b Counter) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	if n >= 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// Halve divides every count and error by two, so that recent occurrences
// weigh more than old ones; counters that reach zero are dropped.
func (s *Summary) Halve() {
	kept := s.heap[:0]
	for _, it := range s.heap {
		it.Count /= 2
		it.Error /= 2
		if it.Count > 0 {
			kept = append(kept, it)
		} else {
			delete(s.index, it.Key)
		}
	}
	clear(s.heap[len(kept):])
	s.heap = kept
	for i, it := range s.heap {
		it.pos = i
	}
	for i := len(s.heap)/2 - 1; i >= 0; i-- {
		s.down(i)
	}
}

// Len is the number of keys counted now (at most k).
func (s *Summary) Len() int { return len(s.heap) }

func (s *Summary) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if s.heap[p].Count <= s.heap[i].Count {
			return
		}
		s.swap(i, p)
		i = p
	}
}

// down moves the counter at i below any smaller child (counts only grow
// in Observe, so a counter never needs to move up there).
func (s *Summary) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(s.heap) {
			return
		}
		j := l
		if r := l + 1; r < len(s.heap) && s.heap[r].Count < s.heap[l].Count {
			j = r
		}
		if s.heap[j].Count >= s.heap[i].Count {
			return
		}
		s.swap(i, j)
		i = j
	}
}

func (s *Summary) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.heap[i].pos = i
	s.heap[j].pos = j
}
