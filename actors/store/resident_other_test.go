//go:build !linux

package store

func (s *Store) residentMapped() int64 { return -1 }
