package membership

import (
	"sync"
	"sync/atomic"
)

// subscribers are the channels of Subscribe. The loop publishes every
// snapshot through them, under their lock, so that a new subscriber starts
// from the latest view and never misses a later one.
type subscribers struct {
	mu     sync.Mutex
	chans  map[int]chan View
	next   int
	closed bool
}

// publish stores snap in cur and, when notify is set, offers its view to
// every subscriber: a view the reader has not taken yet is replaced.
func (s *subscribers) publish(cur *atomic.Pointer[snapshot], snap *snapshot, notify bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur.Store(snap)
	if !notify {
		return
	}
	for _, ch := range s.chans {
		offer(ch, snap.view)
	}
}

// offer puts v in ch, replacing an unread view. Only the publisher sends,
// under the lock, so the second send always finds room.
func offer(ch chan View, v View) {
	select {
	case <-ch: // drop the unread, older view
	default:
	}
	ch <- v
}

// subscribe returns a channel holding the current view, and its cancel.
func (s *subscribers) subscribe(cur *atomic.Pointer[snapshot]) (<-chan View, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan View, 1)
	ch <- cur.Load().view
	if s.closed {
		close(ch)
		return ch, func() {}
	}
	if s.chans == nil {
		s.chans = map[int]chan View{}
	}
	id := s.next
	s.next++
	s.chans[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if c, ok := s.chans[id]; ok {
				delete(s.chans, id)
				close(c)
			}
		})
	}
}

// close closes every channel; later subscribers get the last view and a
// closed channel.
func (s *subscribers) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for id, ch := range s.chans {
		delete(s.chans, id)
		close(ch)
	}
}
