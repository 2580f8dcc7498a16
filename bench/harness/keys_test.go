package harness

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestPickerInRange(t *testing.T) {
	for _, dist := range []string{DistUniform, DistZipf} {
		for _, n := range []int{1, 2, 10, 1000} {
			for _, s := range []float64{1.01, 1.1, 2} {
				p := newPicker(dist, s, n, rand.New(rand.NewPCG(1, 2)))
				seen := map[int]bool{}
				for range 20_000 {
					i := p.pick()
					if i < 0 || i >= n {
						t.Fatalf("%s(s=%g) over %d keys picked %d", dist, s, n, i)
					}
					seen[i] = true
				}
				if n <= 10 && len(seen) != n {
					t.Errorf("%s(s=%g) over %d keys reached only %d of them in 20000 picks", dist, s, n, len(seen))
				}
			}
		}
	}
}

// TestZipfSkew checks that zipf is skewed the right way (key 0 hottest, by
// about the share theory gives) and uniform is not.
func TestZipfSkew(t *testing.T) {
	const n, picks, s = 1000, 200_000, 1.1
	count := func(dist string) []int {
		c := make([]int, n)
		p := newPicker(dist, s, n, rand.New(rand.NewPCG(3, 4)))
		for range picks {
			c[p.pick()]++
		}
		return c
	}
	// P(key 0) = 1 / sum_{i=1..n} i^-s, about 0.187 for n=1000, s=1.1.
	z := count(DistZipf)
	if share := float64(z[0]) / picks; share < 0.15 || share > 0.22 {
		t.Errorf("zipf: key 0 has %.3f of picks, want about 0.187", share)
	}
	if z[0] <= z[1] || z[1] <= z[10] || z[10] <= z[500] {
		t.Errorf("zipf: counts not decreasing with rank: key0 %d, key1 %d, key10 %d, key500 %d", z[0], z[1], z[10], z[500])
	}
	u := count(DistUniform)
	if share := float64(u[0]) / picks; share > 0.005 {
		t.Errorf("uniform: key 0 has %.3f of picks, want about 0.001", share)
	}
}

func TestKeyspace(t *testing.T) {
	ks := newKeyspace("bench-0a1b2c3d.", 3)
	want := []string{"bench-0a1b2c3d.0", "bench-0a1b2c3d.1", "bench-0a1b2c3d.2"}
	for i := range want {
		if ks[i] != want[i] {
			t.Errorf("key %d = %q, want %q", i, ks[i], want[i])
		}
	}
}

func TestRunKeyPrefix(t *testing.T) {
	a, b := runKeyPrefix(), runKeyPrefix()
	if a == b {
		t.Errorf("two runs share the key prefix %q", a)
	}
	for _, p := range []string{a, b} {
		if len(p) != len("bench-12345678.") || !strings.HasPrefix(p, "bench-") || !strings.HasSuffix(p, ".") || checkKeyPrefix(p) != nil {
			t.Errorf("run key prefix %q, want bench-, 8 hex digits and a dot", p)
		}
	}
}

func TestCheckKeyPrefix(t *testing.T) {
	for _, p := range []string{"", "bench-1.", "a/b/", "x_y=z-", "app.bench."} {
		if err := checkKeyPrefix(p); err != nil {
			t.Errorf("checkKeyPrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{".x", "a..b", "a b", "a.*.", "x>", "é", strings.Repeat("k", maxKeyPrefix+1)} {
		if err := checkKeyPrefix(p); err == nil {
			t.Errorf("checkKeyPrefix(%q) = nil, want an error", p)
		}
	}
	c := DefaultConfig()
	c.KeyPrefix = "a b"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "--key-prefix") {
		t.Errorf("Validate with a bad key prefix: %v, want an error naming --key-prefix", err)
	}
}
