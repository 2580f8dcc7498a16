package store

// Peek is Lookup for the owner's own reads (a node reading its reserved
// keys): the same answer, but it counts no hit or miss, leaves eviction's
// access bits alone and removes nothing; an expired entry is absent.
func (s *Store) Peek(key string) (e Entry, deleted uint64, err error) {
	sh, h := s.shardOf(key)
	return sh.peek(h, key, s.clock)
}

func (sh *shard) peek(h uint32, key string, clock Clock) (Entry, uint64, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	i := sh.idx.find(&sh.sl, h, key)
	if i == 0 {
		return Entry{}, 0, ErrNotFound
	}
	e := sh.sl.at(i)
	switch {
	case e.tomb():
		return Entry{}, e.version, ErrNotFound
	case e.expires != 0 && e.expired(clock.Now().UnixNano()):
		return Entry{}, 0, ErrNotFound
	}
	return sh.sl.public(e, key, true, sh.flagsHigh(i, e)), 0, nil
}
