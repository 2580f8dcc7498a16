package partition

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// zoneSet assigns each of ms a zone out of z ("z0".."z{z-1}"), every zone
// used when len(ms) ≥ z; with balanced, the zones' sizes differ by at most
// one, else they are random.
func zoneSet(rng *rand.Rand, ms []string, z int, balanced bool) map[string]string {
	out := make(map[string]string, len(ms))
	perm := rng.Perm(len(ms))
	for i, k := range perm {
		zi := i % z
		if !balanced && i >= z {
			zi = rng.IntN(z)
		}
		out[ms[k]] = fmt.Sprintf("z%d", zi)
	}
	return out
}

// checkSpread fails unless every partition's owners span min(R, Z) zones,
// and Unspread lists exactly the partitions that do not span R.
func checkSpread(t *testing.T, name string, tb *Table, zoneOf map[string]string) {
	t.Helper()
	zs := map[string]bool{}
	for _, m := range tb.Members() {
		zs[zoneOf[m]] = true
	}
	r := tb.Replicas()
	var want []int
	for p := range tb.Partitions() {
		seen := map[string]bool{}
		for _, m := range tb.Owners(p) {
			seen[zoneOf[m]] = true
		}
		if len(seen) < min(r, len(zs)) {
			t.Fatalf("%s: partition %d owners %v span %d zones, want %d", name, p, tb.Owners(p), len(seen), min(r, len(zs)))
		}
		if len(seen) < r {
			want = append(want, p)
		}
	}
	if len(zs) >= r && len(tb.Unspread()) != 0 {
		t.Fatalf("%s: %d zones for R=%d, yet Unspread lists %v", name, len(zs), r, tb.Unspread())
	}
	if !slices.Equal(tb.Unspread(), want) && len(want)+len(tb.Unspread()) > 0 {
		t.Fatalf("%s: Unspread %v, want %v", name, tb.Unspread(), want)
	}
}

// TestZonedSpread is the placement property over many random member sets,
// zone assignments and shapes: no partition has two owners in one zone when
// at least R zones are alive; with fewer, every partition spans all of them
// and Unspread says which (all) could not be spread.
func TestZonedSpread(t *testing.T) {
	rng := rand.New(rand.NewPCG(20, 21))
	for i := range 2000 {
		partitions, n, replicas, z := 1+rng.IntN(400), 1+rng.IntN(14), 1+rng.IntN(4), 1+rng.IntN(5)
		if i%3 == 0 {
			partitions = defP
		}
		ms := names(rng, n)
		zoneOf := zoneSet(rng, ms, z, rng.IntN(2) == 0)
		tb := ComputeZoned(ms, zoneOf, partitions, replicas)
		name := fmt.Sprintf("P=%d R=%d N=%d Z=%d", partitions, replicas, n, z)
		checkValid(t, tb, ms, partitions, replicas)
		checkSpread(t, name, tb, zoneOf)
		prim, _ := counts(tb)
		checkEven(t, name+": primaries", prim, partitions)
		if t.Failed() {
			t.FailNow()
		}
	}
}

// TestZonedDeterministic: the same members and zones give the same table in
// any order, and Without keeps the zones.
func TestZonedDeterministic(t *testing.T) {
	for seed := range uint64(10) {
		rng := rand.New(rand.NewPCG(seed, 22))
		ms := names(rng, 4+int(seed))
		zoneOf := zoneSet(rng, ms, 3, false)
		want := ComputeZoned(ms, zoneOf, defP, defR)
		for range 5 {
			shuffled := slices.Clone(ms)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			if got := ComputeZoned(append(shuffled, shuffled[0]), zoneOf, defP, defR); !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d: table of %v differs from table of %v", seed, shuffled, ms)
			}
		}
		if got, w := want.Without(ms[0]), ComputeZoned(ms[1:], zoneOf, defP, defR); !reflect.DeepEqual(got, w) {
			t.Fatalf("seed %d: Without differs from ComputeZoned of the others", seed)
		}
	}
	// Without zones it is Compute, golden tables included.
	ms := []string{"node-1", "node-2", "node-3", "node-4", "node-5"}
	if !reflect.DeepEqual(Compute(ms, defP, defR), compute(ms, nil, defP, defR)) {
		t.Fatal("Compute differs from compute without zones")
	}
	if Compute(ms, defP, defR).Zoned() || Compute(ms, defP, defR).Unspread() != nil {
		t.Fatal("a table without zones says it is zoned")
	}
}

// feasible reports whether no zone holds more than N/R of the members: then
// every member can hold its even share of copies.
func feasible(zoneOf map[string]string, ms []string, r int) bool {
	size := map[string]int{}
	for _, m := range ms {
		size[zoneOf[m]]++
	}
	for _, s := range size {
		if s*r > len(ms) {
			return false
		}
	}
	return true
}

// TestZonedBalance checks, for 3–10 nodes in R..4 zones where no zone holds
// over N/R of the members: primaries floor/ceil, ownerships within one of
// floor/ceil, keys per node within ±10 % of even — the properties of
// TestBalance, with zones.
func TestZonedBalance(t *testing.T) {
	const keys = 100_000
	rng := rand.New(rand.NewPCG(23, 24))
	ks := make([]string, keys)
	for i := range ks {
		ks[i] = fmt.Sprintf("k%x", rng.Uint64())
	}
	for _, replicas := range []int{2, 3} {
		for n := 3; n <= 10; n++ {
			worst, tried := 0.0, 0
			for seed := range uint64(30) {
				rng := rand.New(rand.NewPCG(seed, uint64(n*10+replicas)))
				ms := names(rng, n)
				zoneOf := zoneSet(rng, ms, replicas+rng.IntN(3), rng.IntN(2) == 0)
				if !feasible(zoneOf, ms, replicas) {
					continue
				}
				tried++
				tb := ComputeZoned(ms, zoneOf, defP, replicas)
				name := fmt.Sprintf("R=%d N=%d seed %d", replicas, n, seed)
				checkValid(t, tb, ms, defP, replicas)
				checkSpread(t, name, tb, zoneOf)
				prim, owned := counts(tb)
				checkEven(t, name+": primaries", prim, defP)
				total := defP * min(replicas, n)
				for m, v := range owned {
					if v < total/n-1 || v > (total+n-1)/n+1 {
						t.Errorf("%s: ownerships of %s = %d, want %d..%d ± 1", name, m, v, total/n, (total+n-1)/n)
					}
				}
				perNode := map[string]int{}
				for _, k := range ks {
					perNode[tb.PrimaryOf(k)]++
				}
				even := float64(keys) / float64(n)
				for m, v := range perNode {
					dev := float64(v)/even - 1
					worst = max(worst, math.Abs(dev))
					if math.Abs(dev) > 0.10 {
						t.Errorf("%s: %s has %d keys, %+.1f%% from even", name, m, v, 100*dev)
					}
				}
			}
			t.Logf("R=%d N=%2d: %2d feasible zone sets, keys per node worst %.1f%% from even", replicas, n, tried, 100*worst)
		}
	}
}

// TestZonedOversizedZone: a zone with more than N/R of the members cannot
// take its even share; spread still holds and the others carry the rest.
func TestZonedOversizedZone(t *testing.T) {
	ms := []string{"a1", "a2", "a3", "a4", "b1", "c1"}
	zoneOf := map[string]string{"a1": "a", "a2": "a", "a3": "a", "a4": "a", "b1": "b", "c1": "c"}
	tb := ComputeZoned(ms, zoneOf, defP, 2)
	checkValid(t, tb, ms, defP, 2)
	checkSpread(t, "oversized", tb, zoneOf)
	_, owned := counts(tb)
	inA := owned["a1"] + owned["a2"] + owned["a3"] + owned["a4"]
	if inA > defP {
		t.Fatalf("zone a holds %d copies of %d partitions: two in one zone", inA, defP)
	}
	t.Logf("ownerships: %v", owned)
}

// TestZonedFewerZones: with fewer zones than R, every partition is unspread
// and still has R owners over all zones.
func TestZonedFewerZones(t *testing.T) {
	ms := []string{"a1", "a2", "b1", "b2"}
	zoneOf := map[string]string{"a1": "a", "a2": "a", "b1": "b", "b2": "b"}
	tb := ComputeZoned(ms, zoneOf, 64, 3)
	checkValid(t, tb, ms, 64, 3)
	checkSpread(t, "fewer", tb, zoneOf)
	if len(tb.Unspread()) != 64 {
		t.Fatalf("Unspread has %d partitions, want all 64", len(tb.Unspread()))
	}
	one := ComputeZoned(ms, map[string]string{}, 64, 2) // nobody tagged: one zone ""
	if len(one.Unspread()) != 64 || !slices.Equal(one.Zones(), []string{""}) {
		t.Fatalf("untagged members: Unspread %d, zones %q", len(one.Unspread()), one.Zones())
	}
}

// TestZonedJoinLeave checks the movement bound of TestJoinLeave with zones,
// on joins into a random zone and leaves, for zone sets where no zone is
// oversized before or after: primaries moved ≤ 2P/N as without zones; owner
// copies ≤ 1.25 × 2PR/N. The zone rule costs copies: a partition whose
// primary moves to another zone may need a new replica too, and the zone
// that must hold a copy of (nearly) every partition cascades; over 600
// random sets at N = 3..10 the worst was 1.05 × 2PR/N (N = 9, 10, a zone of
// exactly N/R members), the average 1.6 × the ideal PR/N.
func TestZonedJoinLeave(t *testing.T) {
	t.Logf("  N | join prim avg max | join copies avg max | leave prim avg max | leave copies avg max | bound 2P/N, 1.25·2PR/N")
	for n := 3; n <= 10; n++ {
		var jp, jmax, jo, jomax, lp, lmax, lo, lomax, samples int
		primBound := 2 * float64(defP) / float64(n)
		ownBound := 1.25 * primBound * defR
		for seed := range uint64(200) {
			rng := rand.New(rand.NewPCG(seed, uint64(200+n)))
			ms := names(rng, n+1)
			zoneOf := zoneSet(rng, ms, 2+rng.IntN(3), rng.IntN(2) == 0)
			k := rng.IntN(n)
			rest := slices.Delete(slices.Clone(ms[:n]), k, k+1)
			if !feasible(zoneOf, ms[:n], defR) || !feasible(zoneOf, ms, defR) || !feasible(zoneOf, rest, defR) {
				continue
			}
			samples++
			before := ComputeZoned(ms[:n], zoneOf, defP, defR)
			after := ComputeZoned(ms, zoneOf, defP, defR)
			p, o := Moves(before, after)
			jp, jmax, jo, jomax = jp+p, max(jmax, p), jo+o, max(jomax, o)
			if float64(p) > primBound || float64(o) > ownBound {
				t.Errorf("N=%d seed %d join: moved %d primaries, %d owners; bounds %.0f, %.0f", n, seed, p, o, primBound, ownBound)
			}
			left := ComputeZoned(rest, zoneOf, defP, defR)
			p, o = Moves(before, left)
			lp, lmax, lo, lomax = lp+p, max(lmax, p), lo+o, max(lomax, o)
			if float64(p) > primBound || float64(o) > ownBound {
				t.Errorf("N=%d seed %d leave: moved %d primaries, %d owners; bounds %.0f, %.0f", n, seed, p, o, primBound, ownBound)
			}
		}
		if samples == 0 {
			continue
		}
		avg := func(sum int) float64 { return float64(sum) / float64(samples) }
		t.Logf(" %2d | %5.1f %3d | %5.1f %3d | %5.1f %3d | %5.1f %3d | %.0f, %.0f (%d samples)",
			n, avg(jp), jmax, avg(jo), jomax, avg(lp), lmax, avg(lo), lomax, primBound, ownBound, samples)
	}
}

func TestZonedJSON(t *testing.T) {
	tb := ComputeZoned([]string{"a", "b", "c"}, map[string]string{"a": "x", "b": "x", "c": "y"}, 5, 2)
	b, err := json.Marshal(tb)
	if err != nil {
		t.Fatal(err)
	}
	var back Table
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if !reflect.DeepEqual(&back, tb) {
		t.Errorf("round trip of %s: %+v, want %+v", b, back, *tb)
	}
	fewer := ComputeZoned([]string{"a", "b"}, map[string]string{"a": "x", "b": "x"}, 3, 2)
	if b, _ := json.Marshal(fewer); !json.Valid(b) || !slices.Equal(fewer.Unspread(), []int{0, 1, 2}) {
		t.Fatalf("unspread table %s", b)
	}
	for _, s := range []string{
		`{"partitions":1,"replicas":1,"members":["a"],"owners":[["a"]],"zones":{"b":"x"}}`,
		`{"partitions":1,"replicas":1,"members":["a"],"owners":[["a"]],"zones":{"a":"x"},"unspread":[1]}`,
		`{"partitions":1,"replicas":1,"members":["a"],"owners":[["a"]],"unspread":[0]}`,
	} {
		var tb Table
		if err := json.Unmarshal([]byte(s), &tb); !errors.Is(err, ErrBadTable) {
			t.Errorf("decode %s: err %v, want ErrBadTable", s, err)
		}
	}
}
