package partition

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const (
	defP = 271 // default partition count
	defR = 2   // default replicas
)

// names returns n distinct random node names.
func names(rng *rand.Rand, n int) []string {
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		s := fmt.Sprintf("node-%08x", rng.Uint32())
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// counts returns primaries and ownerships per member.
func counts(t *Table) (primaries, owned map[string]int) {
	primaries, owned = map[string]int{}, map[string]int{}
	for _, m := range t.Members() {
		primaries[m], owned[m] = 0, 0
	}
	for p := range t.Partitions() {
		if o := t.Owners(p); len(o) > 0 {
			primaries[o[0]]++
		}
		for _, m := range t.Owners(p) {
			owned[m]++
		}
	}
	return primaries, owned
}

// checkEven fails unless every count is floor(total/n) or ceil(total/n).
func checkEven(t *testing.T, what string, c map[string]int, total int) {
	t.Helper()
	n := len(c)
	lo, hi := total/n, (total+n-1)/n
	for m, v := range c {
		if v < lo || v > hi {
			t.Errorf("%s of %s = %d, want %d..%d (total %d over %d)", what, m, v, lo, hi, total, n)
		}
	}
}

// checkValid fails unless every partition has exactly R distinct owners from
// members, R being replicas capped at the member count.
func checkValid(t *testing.T, tb *Table, members []string, partitions, replicas int) {
	t.Helper()
	want := slices.Clone(members)
	slices.Sort(want)
	want = slices.Compact(want)
	r := min(replicas, len(want))
	if !slices.Equal(tb.Members(), want) || tb.Partitions() != partitions || tb.Replicas() != r {
		t.Fatalf("table members %v, P %d, R %d; want %v, %d, %d", tb.Members(), tb.Partitions(), tb.Replicas(), want, partitions, r)
	}
	for p := range partitions {
		o := tb.Owners(p)
		if len(o) != r {
			t.Fatalf("partition %d owners %v, want %d", p, o, r)
		}
		for i, m := range o {
			if !slices.Contains(want, m) || slices.Contains(o[:i], m) {
				t.Fatalf("partition %d owners %v: %q unknown or repeated", p, o, m)
			}
		}
	}
}

func TestOfGolden(t *testing.T) {
	// FNV-1a 32 values from hash/fnv over the key without its dots ("a" and
	// "foobar" are the published test vectors). A change here breaks every
	// client in every language, and NATS's partition() mapping.
	tests := []struct {
		key      string
		fnv      uint32
		p271     int
		p65536   int
		p1, p256 int
	}{
		{"", 0x811c9dc5, 199, 40389, 0, 0xc5},
		{"a", 0xe40c292c, 101, 10540, 0, 0x2c},
		{"foobar", 0xbf9cf968, 117, 63848, 0, 0x68},
		{"user:42", 0x2f6b7b82, 48, 31618, 0, 0x82},
		{"roost", 0x1d4c0adc, 53, 2780, 0, 0xdc},
		{"key with spaces", 0xfb93fb5b, 154, 64347, 0, 0x5b},
		{"ключ", 0x95c4e9e1, 10, 59873, 0, 0xe1},
		{"a.b.c", 0x1a47e90b, 79, 59659, 0, 0x0b}, // as "abc"
	}
	for _, tt := range tests {
		if got := keyHash(tt.key); got != tt.fnv {
			t.Errorf("keyHash(%q) = %#x, want %#x", tt.key, got, tt.fnv)
		}
		for _, c := range []struct{ p, want int }{{271, tt.p271}, {65536, tt.p65536}, {1, tt.p1}, {256, tt.p256}} {
			if got := Of(tt.key, c.p); got != c.want {
				t.Errorf("Of(%q, %d) = %d, want %d", tt.key, c.p, got, c.want)
			}
		}
	}
}

func TestOfMatchesHashFNV(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		b := make([]byte, rng.IntN(64))
		for i := range b {
			b[i] = byte(rng.Uint32())
			if rng.IntN(8) == 0 {
				b[i] = '.'
			}
		}
		h := fnv.New32a()
		h.Write(bytes.ReplaceAll(b, []byte("."), nil))
		for _, p := range []int{1, 7, 271, 1000, 65536} {
			if got, want := Of(string(b), p), int(h.Sum32()%uint32(p)); got != want {
				t.Fatalf("Of(%q, %d) = %d, hash/fnv says %d", b, p, got, want)
			}
		}
	}
}

func TestOfPanicsWithoutPartitions(t *testing.T) {
	for _, p := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Of(key, %d) did not panic", p)
				}
			}()
			Of("key", p)
		}()
	}
}

// TestOfUniform checks a chi-square of keys over partitions, for random keys
// and for the sequential keys applications like to use.
func TestOfUniform(t *testing.T) {
	const perPartition = 1000
	rng := rand.New(rand.NewPCG(3, 4))
	shapes := []struct {
		name string
		key  func(i int) string
	}{
		{"random", func(int) string { return fmt.Sprintf("%x", rng.Uint64()) }},
		{"sequential", func(i int) string { return fmt.Sprintf("user:%d", i) }},
		{"zero-padded", func(i int) string { return fmt.Sprintf("order-%09d", i) }},
	}
	for _, partitions := range []int{defP, 256, 1021} {
		for _, s := range shapes {
			n := partitions * perPartition
			c := make([]int, partitions)
			for i := range n {
				c[Of(s.key(i), partitions)]++
			}
			chi := 0.0
			for _, v := range c {
				d := float64(v - perPartition)
				chi += d * d / perPartition
			}
			df := float64(partitions - 1)
			limit := df + 5*math.Sqrt(2*df) // 5 sigma
			t.Logf("P=%d %s keys: chi²=%.0f (df %.0f, limit %.0f), min %d max %d per partition",
				partitions, s.name, chi, df, limit, slices.Min(c), slices.Max(c))
			if partitions&(partitions-1) == 0 {
				// FNV-1a 32's low bits are weaker: with a power-of-two P,
				// sequential keys spread less evenly than chance (chi² near
				// 3 × df), though every partition stays within ±15 % of
				// even. Hence a prime P by default (docs/cluster.md).
				if lo, hi := slices.Min(c), slices.Max(c); lo < perPartition*85/100 || hi > perPartition*115/100 {
					t.Errorf("P=%d %s keys: partitions hold %d..%d keys, beyond ±15 %% of %d", partitions, s.name, lo, hi, perPartition)
				}
				continue
			}
			if chi > limit {
				t.Errorf("P=%d %s keys: chi² %.0f > %.0f", partitions, s.name, chi, limit)
			}
		}
	}
}

// TestComputeGolden pins tables of fixed member sets: a change of the score
// or of the assignment reshuffles every cluster on upgrade.
func TestComputeGolden(t *testing.T) {
	tests := []struct {
		members              []string
		partitions, replicas int
		want                 string // owners of each partition, or the fnv1a of that string when long
	}{
		{[]string{"c", "a", "b", "d"}, 12, 2, "b,c c,d d,c c,a d,b a,b a,d d,c c,a b,a b,d a,b"},
		{[]string{"node-1", "node-2", "node-3", "node-4", "node-5", "node-6", "node-7"}, defP, defR, "0xedec64a693200c8c"},
		{[]string{"node-1", "node-2", "node-3", "node-4", "node-5", "node-6", "node-7"}, 1024, 3, "0xe28b5ed22c83c1b2"},
	}
	for _, tt := range tests {
		tb := Compute(tt.members, tt.partitions, tt.replicas)
		var owners []string
		for p := range tb.Partitions() {
			owners = append(owners, strings.Join(tb.Owners(p), ","))
		}
		got := strings.Join(owners, " ")
		if len(got) > 100 {
			got = fmt.Sprintf("%#x", fnv1a(got))
		}
		if got != tt.want {
			t.Errorf("Compute(%v, %d, %d) owners:\n got  %s\n want %s", tt.members, tt.partitions, tt.replicas, got, tt.want)
		}
	}
}

func TestDeterministicAndOrderIndependent(t *testing.T) {
	for seed := range uint64(10) {
		rng := rand.New(rand.NewPCG(seed, 5))
		ms := names(rng, 3+int(seed))
		want := Compute(ms, defP, defR)
		for range 5 {
			shuffled := slices.Clone(ms)
			rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			shuffled = append(shuffled, shuffled[:2]...) // duplicates are ignored
			got := Compute(shuffled, defP, defR)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d: table of %v differs from table of %v", seed, shuffled, ms)
			}
		}
	}
}

// TestBalance checks primaries and ownerships per node (floor/ceil) and keys
// per node (±10 % of even) for 3–10 nodes at the defaults.
func TestBalance(t *testing.T) {
	const keys = 200_000
	rng := rand.New(rand.NewPCG(6, 7))
	ks := make([]string, keys)
	for i := range ks {
		ks[i] = fmt.Sprintf("k%x", rng.Uint64())
	}
	for n := 3; n <= 10; n++ {
		worst := 0.0
		for seed := range uint64(8) {
			ms := names(rand.New(rand.NewPCG(seed, uint64(n))), n)
			tb := Compute(ms, defP, defR)
			checkValid(t, tb, ms, defP, defR)
			prim, owned := counts(tb)
			checkEven(t, fmt.Sprintf("N=%d seed %d: primaries", n, seed), prim, defP)
			checkEven(t, fmt.Sprintf("N=%d seed %d: ownerships", n, seed), owned, defP*defR)

			perNode := map[string]int{}
			for _, k := range ks {
				perNode[tb.PrimaryOf(k)]++
			}
			even := float64(keys) / float64(n)
			for m, v := range perNode {
				dev := float64(v)/even - 1
				worst = max(worst, math.Abs(dev))
				if math.Abs(dev) > 0.10 {
					t.Errorf("N=%d seed %d: %s has %d keys, %+.1f%% from even %.0f", n, seed, m, v, 100*dev, even)
				}
			}
		}
		t.Logf("N=%2d: primaries %d..%d, ownerships %d..%d per node, keys per node worst %.1f%% from even",
			n, defP/n, (defP+n-1)/n, defP*defR/n, (defP*defR+n-1)/n, 100*worst)
	}
}

// TestOwners checks R distinct owners, R capped at N, exact balance and the
// accessors, over many shapes including N > P and R ≥ N.
func TestOwners(t *testing.T) {
	for _, partitions := range []int{1, 2, 7, 64, defP, 1024} {
		for _, replicas := range []int{1, 2, 3, 5} {
			for _, n := range []int{1, 2, 3, 4, 5, 7, 10, 16} {
				for seed := range uint64(3) {
					ms := names(rand.New(rand.NewPCG(seed, uint64(n*1000+replicas))), n)
					tb := Compute(ms, partitions, replicas)
					name := fmt.Sprintf("P=%d R=%d N=%d seed %d", partitions, replicas, n, seed)
					checkValid(t, tb, ms, partitions, replicas)
					prim, owned := counts(tb)
					checkEven(t, name+": primaries", prim, partitions)
					checkEven(t, name+": ownerships", owned, partitions*min(replicas, n))
					for _, m := range ms {
						primary, replica := tb.Owned(m)
						if !slices.IsSorted(primary) || !slices.IsSorted(replica) || len(primary) != prim[m] || len(primary)+len(replica) != owned[m] {
							t.Fatalf("%s: Owned(%s) = %v, %v; counts %d, %d", name, m, primary, replica, prim[m], owned[m])
						}
						for _, p := range primary {
							if tb.Primary(p) != m || !tb.IsOwner(m, p) {
								t.Fatalf("%s: Owned(%s) says primary of %d, table says %v", name, m, p, tb.Owners(p))
							}
						}
						for _, p := range replica {
							if tb.Primary(p) == m || !tb.IsOwner(m, p) {
								t.Fatalf("%s: Owned(%s) says replica of %d, table says %v", name, m, p, tb.Owners(p))
							}
						}
					}
				}
			}
		}
	}
}

// TestOwnersRandomShapes checks validity and exact balance over random
// shapes, odd ones included (R close to N, N close to or above P).
func TestOwnersRandomShapes(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for i := range 3000 {
		partitions, n, replicas := 1+rng.IntN(400), 1+rng.IntN(24), 1+rng.IntN(6)
		if i%3 == 0 { // small and tight
			partitions, n = 1+rng.IntN(16), 1+rng.IntN(8)
		}
		ms := names(rng, n)
		tb := Compute(ms, partitions, replicas)
		name := fmt.Sprintf("P=%d R=%d N=%d %v", partitions, replicas, n, ms)
		checkValid(t, tb, ms, partitions, replicas)
		prim, owned := counts(tb)
		checkEven(t, name+": primaries", prim, partitions)
		checkEven(t, name+": ownerships", owned, partitions*min(replicas, n))
		if t.Failed() {
			t.FailNow()
		}
	}
}

func TestNoMembers(t *testing.T) {
	tb := Compute(nil, defP, defR)
	if tb.Replicas() != 0 || len(tb.Members()) != 0 || tb.Partitions() != defP {
		t.Fatalf("empty table: R %d, members %v, P %d", tb.Replicas(), tb.Members(), tb.Partitions())
	}
	for p := range defP {
		if len(tb.Owners(p)) != 0 || tb.Primary(p) != "" || tb.IsOwner("a", p) {
			t.Fatalf("partition %d of an empty table has owners %v", p, tb.Owners(p))
		}
	}
	if tb.PrimaryOf("key") != "" {
		t.Fatalf("PrimaryOf in an empty table = %q", tb.PrimaryOf("key"))
	}
	if pr, rep := tb.Owned("a"); pr != nil || rep != nil {
		t.Fatalf("Owned in an empty table = %v, %v", pr, rep)
	}
	b, err := json.Marshal(tb)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"members":[]`) || !strings.Contains(string(b), `"owners":[[],[]`) {
		t.Fatalf("empty table JSON %s, want empty lists", b[:min(len(b), 80)])
	}
}

func TestComputePanics(t *testing.T) {
	for _, c := range []struct{ p, r int }{{0, 2}, {-1, 2}, {271, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Compute(_, %d, %d) did not panic", c.p, c.r)
				}
			}()
			Compute([]string{"a"}, c.p, c.r)
		}()
	}
}

// TestJoinLeave checks how much a join (N→N+1) or a leave (N→N-1) moves, for
// N in 3..10, and logs the typical figures.
func TestJoinLeave(t *testing.T) {
	const seeds = 40
	t.Logf("P=%d R=%d, %d random member sets per N; primaries moved (avg/max, ideal P/N'), of which between old nodes; owner copies (avg/max); promoted = share of a leaver's partitions whose new primary was an old owner",
		defP, defR, seeds)
	t.Logf("  N | join prim avg max ideal | old→old avg max | join copies avg max | leave prim avg max ideal | promoted | leave copies avg max | bound 2P/N, 2PR/N")
	for n := 3; n <= 10; n++ {
		var jp, jmax, jold, joldMax, jo, jomax, lp, lmax, lo, lomax, leaverPrim, promoted int
		primBound := 2 * float64(defP) / float64(n)
		ownBound := primBound * defR
		for seed := range uint64(seeds) {
			rng := rand.New(rand.NewPCG(seed, uint64(100+n)))
			ms := names(rng, n+1)
			before := Compute(ms[:n], defP, defR)

			// Join: ms[n] joins.
			after := Compute(ms, defP, defR)
			p, o := Moves(before, after)
			old := 0
			for q := range defP {
				if before.Primary(q) != after.Primary(q) && after.Primary(q) != ms[n] {
					old++
				}
			}
			jp, jmax, jold, joldMax, jo, jomax = jp+p, max(jmax, p), jold+old, max(joldMax, old), jo+o, max(jomax, o)
			if float64(p) > primBound || float64(o) > ownBound {
				t.Errorf("N=%d seed %d join: moved %d primaries, %d owners; bounds %.0f, %.0f", n, seed, p, o, primBound, ownBound)
			}
			if old >= p-old {
				t.Errorf("N=%d seed %d join: %d of %d primary moves between old nodes, not to the new one", n, seed, old, p)
			}

			// Leave: a random member of ms[:n] leaves.
			k := rng.IntN(n)
			left := Compute(slices.Delete(slices.Clone(ms[:n]), k, k+1), defP, defR)
			p, o = Moves(before, left)
			lp, lmax, lo, lomax = lp+p, max(lmax, p), lo+o, max(lomax, o)
			if float64(p) > primBound || float64(o) > ownBound {
				t.Errorf("N=%d seed %d leave: moved %d primaries, %d owners; bounds %.0f, %.0f", n, seed, p, o, primBound, ownBound)
			}
			gone, _ := before.Owned(ms[k])
			for _, q := range gone {
				leaverPrim++
				if before.IsOwner(left.Primary(q), q) {
					promoted++
				}
			}
			if p < len(gone) {
				t.Errorf("N=%d seed %d leave: %d primaries moved, but the leaver had %d", n, seed, p, len(gone))
			}
		}
		avg := func(sum int) float64 { return float64(sum) / seeds }
		t.Logf(" %2d | %5.1f %3d %5.1f | %4.1f %3d | %5.1f %3d | %5.1f %3d %5.1f | %3.0f%% | %5.1f %3d | %.0f, %.0f",
			n, avg(jp), jmax, float64(defP)/float64(n+1), avg(jold), joldMax, avg(jo), jomax,
			avg(lp), lmax, float64(defP)/float64(n), 100*float64(promoted)/float64(leaverPrim), avg(lo), lomax, primBound, ownBound)
	}
}

func TestMoves(t *testing.T) {
	a := Compute([]string{"a", "b", "c"}, defP, defR)
	if p, o := Moves(a, a); p != 0 || o != 0 {
		t.Errorf("Moves(a, a) = %d, %d", p, o)
	}
	// From nobody to someone: every partition gets a new primary and R copies.
	if p, o := Moves(Compute(nil, defP, defR), a); p != defP || o != defP*defR {
		t.Errorf("Moves(empty, a) = %d, %d; want %d, %d", p, o, defP, defP*defR)
	}
	defer func() {
		if recover() == nil {
			t.Error("Moves between tables of different partition counts did not panic")
		}
	}()
	Moves(a, Compute([]string{"a"}, 7, 1))
}

func TestJSON(t *testing.T) {
	tb := Compute([]string{"b", "a", "c"}, 5, 2)
	tb.Version = 42
	b, err := json.Marshal(tb)
	if err != nil {
		t.Fatal(err)
	}
	var shape map[string]any
	if err := json.Unmarshal(b, &shape); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range shape {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{"members", "owners", "partitions", "replicas", "version"}; !slices.Equal(keys, want) {
		t.Errorf("JSON keys %v, want %v: %s", keys, want, b)
	}
	if b2, _ := json.Marshal(*tb); string(b2) != string(b) {
		t.Errorf("a Table value encodes as %s, a *Table as %s", b2, b)
	}
	var back Table
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	if !reflect.DeepEqual(&back, tb) {
		t.Errorf("round trip: %+v, want %+v", back, *tb)
	}

	bad := []string{
		`{"partitions":0,"replicas":0,"members":[],"owners":[],"version":1}`,
		`{"partitions":1,"replicas":2,"members":["a"],"owners":[["a","a"]]}`,
		`{"partitions":1,"replicas":1,"members":["b","a"],"owners":[["a"]]}`,
		`{"partitions":1,"replicas":1,"members":["a","a"],"owners":[["a"]]}`,
		`{"partitions":2,"replicas":1,"members":["a"],"owners":[["a"]]}`,
		`{"partitions":1,"replicas":2,"members":["a","b"],"owners":[["a"]]}`,
		`{"partitions":1,"replicas":2,"members":["a","b"],"owners":[["a","a"]]}`,
		`{"partitions":1,"replicas":1,"members":["a","b"],"owners":[["c"]]}`,
		`{"partitions":1,"replicas":0,"members":["a"],"owners":[[]]}`,
		`{"partitions":"x"}`,
	}
	for _, s := range bad {
		var tb Table
		if err := json.Unmarshal([]byte(s), &tb); !errors.Is(err, ErrBadTable) {
			t.Errorf("decode %s: err %v, want ErrBadTable", s, err)
		}
	}
}

func BenchmarkCompute(b *testing.B) {
	for _, c := range []struct{ n, p, r int }{{10, defP, defR}, {3, defP, defR}, {10, 4096, 3}} {
		b.Run(fmt.Sprintf("N=%d/P=%d/R=%d", c.n, c.p, c.r), func(b *testing.B) {
			ms := names(rand.New(rand.NewPCG(1, 1)), c.n)
			for b.Loop() {
				Compute(ms, c.p, c.r)
			}
		})
	}
}

func BenchmarkOf(b *testing.B) {
	for _, key := range []string{"user:42", strings.Repeat("k", 100)} {
		b.Run(fmt.Sprintf("len=%d", len(key)), func(b *testing.B) {
			for b.Loop() {
				Of(key, defP)
			}
		})
	}
}

func BenchmarkPrimaryOf(b *testing.B) {
	tb := Compute(names(rand.New(rand.NewPCG(1, 1)), 10), defP, defR)
	for b.Loop() {
		tb.PrimaryOf("user:42")
	}
}

// TestSwap drives swap directly from random stuck states (every member with
// room owns the partition being filled, which Compute meets only near the end
// of a round) and checks that one swap always resolves them, keeping owners
// distinct, primaries in place and the quota exact.
func TestSwap(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	stuck := 0
	for range 300_000 {
		partitions, n := 2+rng.IntN(7), 3+rng.IntN(4)
		r := 2 + rng.IntN(min(n, 4)-1)
		k, p := 1+rng.IntN(r-1), rng.IntN(partitions)
		a := &assigner{n: n, r: r, hash: make([]uint64, n), pmix: make([]uint64, partitions),
			own: make([]int, partitions*r), primaries: newQuota(n, partitions), total: newQuota(n, partitions*r)}
		for i := range a.hash {
			a.hash[i] = rng.Uint64()
		}
		for q := range a.pmix {
			a.pmix[q] = rng.Uint64()
		}
		ok := true
		for j := 0; j <= k && ok; j++ { // fill slots 0..k up to p, at random
			a.round = j
			for q := 0; q < partitions && ok && (j < k || q < p); q++ {
				var can []int
				for i := range n {
					if a.total.room(i) && (j > 0 || a.primaries.room(i)) && !slices.Contains(a.owners(q, q), i) {
						can = append(can, i)
					}
				}
				if ok = len(can) > 0; ok {
					m := can[rng.IntN(len(can))]
					a.own[q*r+j] = m
					a.total.take(m)
					if j == 0 {
						a.primaries.take(m)
					}
				}
			}
		}
		if !ok || a.best(p, false) >= 0 {
			continue // not a stuck state
		}
		stuck++
		before := slices.Clone(a.own)
		m := a.swap(p)
		if m < 0 {
			t.Fatalf("P=%d N=%d R=%d slot %d of partition %d: no swap; owners %v, loads %v", partitions, n, r, k, p, a.own, a.total.load)
		}
		a.own[p*r+k] = m
		a.total.take(m)
		loads := make([]int, n)
		for q := range partitions {
			o := a.owners(q, p+1)
			for i, x := range o {
				loads[x]++
				if slices.Contains(o[:i], x) {
					t.Fatalf("after swap: partition %d owners %v repeat %d", q, o, x)
				}
				if i == 0 && x != before[q*r] {
					t.Fatalf("swap moved the primary of partition %d", q)
				}
			}
		}
		if !slices.Equal(loads, a.total.load) {
			t.Fatalf("after swap: loads %v, quota says %v", loads, a.total.load)
		}
		over := 0
		for _, l := range loads {
			if l > a.total.base+1 {
				t.Fatalf("after swap: loads %v above base %d + 1", loads, a.total.base)
			}
			if l == a.total.base+1 {
				over++
			}
		}
		if over+a.total.extra != (partitions*r)%n {
			t.Fatalf("after swap: %d members above base, %d extra left; want %d in all", over, a.total.extra, (partitions*r)%n)
		}
	}
	t.Logf("%d stuck states, all resolved by one swap", stuck)
	if stuck < 1000 {
		t.Errorf("only %d stuck states generated", stuck)
	}
}

// Without is the table the other members compute.
func TestWithout(t *testing.T) {
	full := Compute([]string{"a", "b", "c"}, 64, 2)
	got := full.Without("b")
	want := Compute([]string{"a", "c"}, 64, 2)
	for p := range 64 {
		if !slices.Equal(got.Owners(p), want.Owners(p)) {
			t.Fatalf("partition %d: %v, want %v", p, got.Owners(p), want.Owners(p))
		}
	}
	if Compute([]string{"a"}, 8, 1).Without("a") != nil {
		t.Fatal("a table without its only member is not nil")
	}
}
