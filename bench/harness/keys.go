package harness

import (
	"math/rand/v2"
	"strconv"
)

// keyPrefix starts every key the harness writes, so that a run against a
// shared deployment is easy to tell apart (and to clean up with a scan).
const keyPrefix = "bench-"

// keyspace holds the names of keys 0..n-1, built once and only read after.
type keyspace []string

func newKeyspace(n int) keyspace {
	ks := make(keyspace, n)
	for i := range ks {
		ks[i] = keyPrefix + strconv.Itoa(i)
	}
	return ks
}

// picker draws key indexes in [0, n) by one distribution. Each worker has
// its own: it is not safe for concurrent use.
type picker interface {
	pick() int
}

// newPicker returns a picker over n keys for dist (DistUniform or DistZipf
// with exponent s > 1) drawing from rng.
func newPicker(dist string, s float64, n int, rng *rand.Rand) picker {
	if dist == DistZipf && n > 1 {
		return zipfPicker{rand.NewZipf(rng, s, 1, uint64(n-1))}
	}
	return uniformPicker{rng: rng, n: n}
}

type uniformPicker struct {
	rng *rand.Rand
	n   int
}

func (p uniformPicker) pick() int { return p.rng.IntN(p.n) }

// zipfPicker draws key i with probability ∝ (1+i)^-s: key 0 is the hottest.
type zipfPicker struct{ z *rand.Zipf }

func (p zipfPicker) pick() int { return int(p.z.Uint64()) }
