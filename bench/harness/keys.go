package harness

import (
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
)

// runKeyPrefix is the default Config.KeyPrefix: "bench-", a random run id
// and a dot ("bench-3f9a1c7e."), new for every run, so that a run against a
// shared deployment touches no key but its own, and two runs none of each
// other's; the report names it.
func runKeyPrefix() string {
	var id [4]byte
	_, _ = crand.Read(id[:])
	return "bench-" + hex.EncodeToString(id[:]) + "."
}

// keyspace holds the names of keys 0..n-1, built once and only read after.
type keyspace []string

// newKeyspace names n keys: prefix followed by 0..n-1.
func newKeyspace(prefix string, n int) keyspace {
	ks := make(keyspace, n)
	for i := range ks {
		ks[i] = prefix + strconv.Itoa(i)
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
