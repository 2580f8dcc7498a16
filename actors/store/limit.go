package store

import "fmt"

// SetMaxMemory changes the memory limit at run time (a node's pushed
// max_memory): every shard's budget becomes its share of maxMemory (0 =
// unlimited), and a shard over its new budget evicts down to it at once,
// tombstones first, then as S3-FIFO picks, as a write that needs room does.
// The shard count stays what New chose, so a limit below MinLimit is
// refused: a shard must hold the largest entry a smaller limit at start
// would have allowed. It returns how many entries were evicted. It may be
// called from any goroutine; shards are changed one after another, each
// under its lock.
func (s *Store) SetMaxMemory(maxMemory int64) (evicted int64, err error) {
	if maxMemory < 0 {
		return 0, fmt.Errorf("%w: MaxMemory must be >= 0 (0 = unlimited), got %d", ErrConfig, maxMemory)
	}
	if maxMemory != 0 && maxMemory < s.MinLimit() {
		return 0, fmt.Errorf("%w: %d bytes is below this store's least limit of %d (%d shards of %d)",
			ErrConfig, maxMemory, s.MinLimit(), len(s.shards), MinShardBudget)
	}
	budget := maxMemory / int64(len(s.shards))
	s.maxMemory.Store(maxMemory)
	for i := range s.shards {
		evicted += s.shards[i].setBudget(budget)
	}
	return evicted, nil
}

// MinLimit is the least limit SetMaxMemory accepts other than 0: one
// MinShardBudget per shard.
func (s *Store) MinLimit() int64 { return int64(len(s.shards)) * MinShardBudget }

// setBudget changes the shard's budget and evicts down to it; it returns
// the entries evicted.
func (sh *shard) setBudget(budget int64) int64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.budget = budget
	sh.pol.smallTarget = budget * smallShare / 100
	sh.pol.remember = budget > 0
	before := sh.evictions
	sh.makeRoom(0)
	return sh.evictions - before
}
