// Package partition maps keys to partitions and partitions to the nodes that
// own them. It is pure: the node and the Go client both import it, and every
// node computes the same Table from the same member set.
//
//	p := partition.Of("user:42", 271) // 48
//	t := partition.Compute([]string{"a", "b", "c"}, 271, 2)
//	t.Owners(p)                       // ["c" "b"]: primary first
//	t.PrimaryOf("user:42")            // "c"
//
// # Keys to partitions
//
// Of is FNV-1a 32-bit over the key's bytes with every '.' (0x2E) left out
// (offset basis 2166136261, prime 16777619; for each byte but '.': h ^= byte,
// then h *= prime, modulo 2^32), reduced as the unsigned value h mod P. It is
// exactly what a NATS server's subject mapping {{partition(P,1,...,k)}}
// computes over a key of k dot-separated tokens (the tokens concatenated),
// so that NATS itself can send a text-API request straight to its key's
// primary (docs/PROTOCOL.md, "Routing"). It is easy to re-implement in any
// language; it must not change again, since clients compute it too.
// (Before 0.2 it was FNV-1a 64 over all the bytes: a cluster cannot mix
// the two.)
//
// # Partitions to owners
//
// Compute is rendezvous (highest-random-weight) hashing with bounded loads.
// Every (partition p, member m) pair has a score
//
//	score(p, m) = splitmix64(fnv1a64(m) ^ splitmix64(uint64(p)))
//	splitmix64(x): x += 0x9E3779B97F4A7C15
//	               x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
//	               x = (x ^ x>>27) * 0x94D049BB133111EB
//	               x ^= x>>31
//
// (ties go to the bytewise smaller name). Changing the score, or anything else below,
// reshuffles every cluster's partitions on upgrade: treat it as frozen; the
// golden tests guard it.
//
// Members are deduplicated and sorted; R = min(replicas, N). Owner slot k
// (k = 0 is the primary) is filled for all partitions before slot k+1, each
// round in ascending partition order: partition p gets the highest-scoring
// member that does not own p yet and still has room. Room is counted by two
// quotas that spread a total T over N members as evenly as possible: a member
// may take one more unit while it holds fewer than floor(T/N), or exactly
// floor(T/N) while fewer than T mod N members have gone past floor(T/N). Slot
// 0 uses the primary quota (T = P) and the ownership quota (T = P·R); the
// other slots use the ownership quota. So primaries per member are exactly
// floor(P/N) or ceil(P/N), and ownerships exactly floor(P·R/N) or ceil(P·R/N).
// Rarely, near the end of a round k ≥ 1, every member with room already owns
// p. Then one swap frees a member: members c not owning p are tried by
// descending score for p and, for each, partitions q ≠ p ascending, until c
// holds a non-primary slot of q that a member with room not owning q can
// take; the highest-scoring such member for q takes it and p gets c, so the
// loads stay exact. (Should no swap exist, which the tests never meet, p gets
// its best non-owner over quota.)
//
// Why this scheme: plain rendezvous hashing moves the minimum on a join or
// leave but is lumpy at this size (271 partitions over 10 nodes give 27 ± 5
// primaries each, so keys per node stray ±20 %). The exact quotas make the
// spread floor/ceil, at most 3.3 % above even for 3–10 nodes at P = 271, so
// keys per node land within ±5 % of even (partition sizes add the rest). The
// price is a little cascading: a join or leave changes the quotas, so some
// partitions also move between the other members. Measured at P = 271, R = 2
// over 3–10 nodes (TestJoinLeave logs the table): a join moves on average
// 1.07–1.36× the ideal P/(N+1) primaries (6–27 % of the moves are between
// old members), a leave 1.03–1.32× the ideal P/N; the worst sample stays
// under 82 % of the 2P/N bound. And 88–96 % of the partitions whose primary
// left get one of their old replicas as the new primary, so no copy is
// needed before it serves.
//
// # Zones
//
// ComputeZoned adds a zone per member (the value of the node's placement
// tag) and spreads each partition's owners over distinct zones while there
// are at least R of them; Table.Unspread lists the partitions it could not
// spread. Compute is ComputeZoned without zones and is unchanged by it. See
// zones.go.
package partition

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// ErrBadTable is returned (wrapped) when JSON does not describe a valid table.
var ErrBadTable = errors.New("partition: bad table")

// KeyHash names the function Of uses, as nodes announce it in their
// heartbeats: nodes that map keys to partitions differently must not form
// one cluster. (Before it, Of was FNV-1a 64 over all the key's bytes; those
// nodes announce nothing.)
const KeyHash = "fnv1a32-nodots"

const (
	fnvOffset32 = 2166136261           // FNV-1a 32-bit offset basis
	fnvPrime32  = 16777619             // FNV-1a 32-bit prime
	fnvOffset64 = 14695981039346656037 // FNV-1a 64-bit offset basis
	fnvPrime64  = 1099511628211        // FNV-1a 64-bit prime
	golden64    = 0x9E3779B97F4A7C15   // splitmix64 increment
)

// Of returns the partition of key: FNV-1a 32-bit over the key's bytes
// except '.', mod partitions, in [0, partitions). It equals NATS's
// {{partition(partitions, ...)}} over the key's tokens. It panics if
// partitions < 1.
func Of(key string, partitions int) int {
	if partitions < 1 {
		panic(fmt.Sprintf("partition: Of with %d partitions", partitions))
	}
	return int(keyHash(key) % uint32(partitions))
}

// keyHash is FNV-1a 32-bit over key's bytes, dots left out: NATS hashes a
// subject's tokens concatenated.
func keyHash(key string) uint32 {
	h := uint32(fnvOffset32)
	for i := 0; i < len(key); i++ {
		if key[i] == '.' {
			continue
		}
		h ^= uint32(key[i])
		h *= fnvPrime32
	}
	return h
}

func fnv1a(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

func splitmix64(x uint64) uint64 {
	x += golden64
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// score is the rendezvous weight of a member (by its name's FNV-1a hash) for
// a partition (by splitmix64(p)).
func score(pmix, nameHash uint64) uint64 { return splitmix64(nameHash ^ pmix) }

// Table maps each partition to its owners, primary first. A Table is
// immutable once built (except Version), so it may be shared between
// goroutines; slices it returns are shared and must not be modified. It
// encodes to JSON as {"partitions", "replicas", "members", "owners",
// "version"}, the shape of the node's admin.table reply.
type Table struct {
	Version uint64 // set by the caller (e.g. the membership view it came from); Compute leaves 0

	partitions int        // partition count P, ≥ 1
	replicas   int        // owners per partition: the requested R capped at len(members); 0 with no members
	members    []string   // distinct names, sorted
	owners     [][]string // per partition, replicas names, primary first
	zones      []string   // placement-tag value per member (same order as members); nil = no zone-aware placement
	unspread   []int      // partitions whose owners could not be spread over replicas distinct zones, ascending; nil without zones
}

// Compute returns the table of members (names of the live data-holding
// nodes, in any order; duplicates are ignored) for partitions partitions with
// replicas owners each, capped at the member count. With no members every
// partition has no owners. It panics if partitions < 1 or replicas < 1.
func Compute(members []string, partitions, replicas int) *Table {
	return compute(members, nil, partitions, replicas)
}

// compute is Compute and ComputeZoned: zoneOf nil means no zone-aware
// placement (the frozen scheme of the package doc).
func compute(members []string, zoneOf map[string]string, partitions, replicas int) *Table {
	if partitions < 1 || replicas < 1 {
		panic(fmt.Sprintf("partition: Compute with %d partitions, %d replicas", partitions, replicas))
	}
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	if ms == nil {
		ms = []string{}
	}
	n := len(ms)
	r := min(replicas, n)
	t := &Table{partitions: partitions, replicas: r, members: ms, owners: make([][]string, partitions)}

	var zone []int // zone index per member, nil without zones
	if zoneOf != nil {
		t.zones = make([]string, n)
		for i, m := range ms {
			t.zones[i] = zoneOf[m]
		}
		zone = zoneIndex(t.zones)
	}
	own := assign(ms, zone, partitions, r)
	flat := make([]string, partitions*r)
	for i, m := range own {
		flat[i] = ms[m]
	}
	for p := range t.owners {
		t.owners[p] = flat[p*r : (p+1)*r : (p+1)*r]
	}
	if zone != nil {
		t.unspread = unspread(own, zone, partitions, r)
	}
	return t
}

// assign runs the bounded-load rendezvous rounds (see the package doc) and
// returns member indices, r per partition, primary first.
func assign(ms []string, zone []int, partitions, r int) []int {
	if len(ms) == 0 {
		return nil
	}
	a := &assigner{
		n:         len(ms),
		r:         r,
		zone:      zone,
		spread:    min(r, zoneCount(zone)),
		hash:      make([]uint64, len(ms)),
		pmix:      make([]uint64, partitions),
		own:       make([]int, partitions*r),
		primaries: newQuota(len(ms), partitions),
		total:     newQuota(len(ms), partitions*r),
	}
	for i, m := range ms {
		a.hash[i] = fnv1a(m)
	}
	for p := range a.pmix {
		a.pmix[p] = splitmix64(uint64(p))
	}
	for k := 0; k < r; k++ {
		a.round = k
		for p := 0; p < partitions; p++ {
			m := a.best(p, k == 0)
			if m < 0 { // every member with room owns p already (k ≥ 1)
				m = a.swap(p)
			}
			if m < 0 { // last resort, over quota (zones: in a zone p lacks, if any)
				m = a.bestOf(p, func(i int) bool { return !slices.Contains(a.owners(p, p), i) && !a.zoneTaken(p, i) })
			}
			if m < 0 {
				m = a.bestOf(p, func(i int) bool { return !slices.Contains(a.owners(p, p), i) })
			}
			a.own[p*r+k] = m
			a.total.take(m)
			if k == 0 {
				a.primaries.take(m)
			}
		}
	}
	return a.own
}

// assigner is the state of one assign run.
type assigner struct {
	n, r      int      // members, owners per partition
	round     int      // slot being filled for every partition: 0 = primary
	hash      []uint64 // fnv1a of each member's name
	pmix      []uint64 // splitmix64 of each partition number
	own       []int    // member index per (partition, slot), r per partition
	primaries *quota   // primaries per member, over P
	total     *quota   // ownerships per member, over P·r
	zone      []int    // zone index per member; nil = no zone-aware placement
	spread    int      // slots 0..spread-1 of a partition must be in distinct zones (zones only)
}

// owners returns the filled slots of partition p: round+1 of them before the
// partition being filled, round from it on.
func (a *assigner) owners(p, current int) []int {
	k := a.round
	if p < current {
		k++
	}
	return a.own[p*a.r : p*a.r+k]
}

// best returns the highest-scoring member for p (the partition being
// filled) that does not own it and has room, in the primary quota too when
// primary; -1 if none.
func (a *assigner) best(p int, primary bool) int {
	mine := a.owners(p, p)
	b, bs := -1, uint64(0)
	for i := 0; i < a.n; i++ {
		if !a.total.room(i) || (primary && !a.primaries.room(i)) || slices.Contains(mine, i) || a.zoneTaken(p, i) {
			continue
		}
		if s := score(a.pmix[p], a.hash[i]); b < 0 || s > bs {
			b, bs = i, s
		}
	}
	return b
}

// bestOf returns the highest-scoring member for p that ok accepts (ties to
// the smaller name), or -1.
func (a *assigner) bestOf(p int, ok func(int) bool) int {
	b, bs := -1, uint64(0)
	for i := 0; i < a.n; i++ {
		if !ok(i) {
			continue
		}
		if s := score(a.pmix[p], a.hash[i]); b < 0 || s > bs {
			b, bs = i, s
		}
	}
	return b
}

// swap frees a member for partition p when every member with room owns it
// already. Members c that do not own p are tried by descending score for p;
// for each, partitions q ≠ p ascending, until c holds a non-primary slot of q
// and some member with room does not own q. The highest-scoring such member
// for q takes c's slot there, the quota moves from c to it, and c is returned
// for p to take. It returns -1 if there is no such swap.
func (a *assigner) swap(p int) int {
	mine := a.owners(p, p)
	for _, c := range a.byScore(p) {
		if slices.Contains(mine, c) || a.zoneTaken(p, c) {
			continue
		}
		for q := range len(a.pmix) {
			theirs := a.owners(q, p)
			j := slices.Index(theirs, c)
			if q == p || j < 1 {
				continue
			}
			m := a.bestOf(q, func(i int) bool {
				return a.total.room(i) && !slices.Contains(theirs, i) && !a.zoneClash(theirs, j, i)
			})
			if m < 0 {
				continue
			}
			theirs[j] = m
			a.total.take(m)
			a.total.give(c)
			return c
		}
	}
	return -1
}

// byScore returns the member indices by descending score for p, ties to the
// smaller name.
func (a *assigner) byScore(p int) []int {
	idx := make([]int, a.n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int {
		si, sj := score(a.pmix[p], a.hash[i]), score(a.pmix[p], a.hash[j])
		switch {
		case si > sj:
			return -1
		case si < sj:
			return 1
		}
		return i - j
	})
	return idx
}

// quota spreads total units over n members as evenly as possible: each may
// hold floor(total/n), and the first total mod n members to ask for more may
// hold one more.
type quota struct {
	load  []int // units held, per member
	base  int   // floor(total/n)
	extra int   // members that may still go to base+1
}

func newQuota(n, total int) *quota {
	return &quota{load: make([]int, n), base: total / n, extra: total % n}
}

func (q *quota) room(i int) bool {
	return q.load[i] < q.base || q.load[i] == q.base && q.extra > 0
}

func (q *quota) take(i int) {
	if q.load[i] == q.base {
		q.extra--
	}
	q.load[i]++
}

func (q *quota) give(i int) {
	q.load[i]--
	if q.load[i] == q.base {
		q.extra++
	}
}

// Owners returns the owners of partition p, primary first; empty when the
// table has no members. p must be in [0, Partitions()).
func (t *Table) Owners(p int) []string { return t.owners[p] }

// Primary returns the primary of partition p, or "" when it has no owners.
func (t *Table) Primary(p int) string {
	if o := t.owners[p]; len(o) > 0 {
		return o[0]
	}
	return ""
}

// PrimaryOf returns the primary of key's partition, or "" with no members.
func (t *Table) PrimaryOf(key string) string { return t.Primary(Of(key, t.partitions)) }

// IsOwner reports whether name is one of partition p's owners.
func (t *Table) IsOwner(name string, p int) bool { return slices.Contains(t.owners[p], name) }

// Owned returns the partitions where name is primary and those where it is
// another owner, both ascending.
func (t *Table) Owned(name string) (primary, replica []int) {
	for p, o := range t.owners {
		switch i := slices.Index(o, name); {
		case i == 0:
			primary = append(primary, p)
		case i > 0:
			replica = append(replica, p)
		}
	}
	return primary, replica
}

// Without returns the table of t's members other than name, with t's
// partition and replica counts (capped again at the members left), or nil
// when no member is left.
func (t *Table) Without(name string) *Table {
	others := slices.DeleteFunc(slices.Clone(t.members), func(m string) bool { return m == name })
	if len(others) == 0 {
		return nil
	}
	return compute(others, t.zoneMap(), t.partitions, t.replicas)
}

// Members returns the member names, sorted.
func (t *Table) Members() []string { return t.members[:len(t.members):len(t.members)] }

// Partitions returns the partition count P.
func (t *Table) Partitions() int { return t.partitions }

// Replicas returns the owners per partition: the requested count capped at
// the member count.
func (t *Table) Replicas() int { return t.replicas }

// Moves compares two tables of the same partition count: primaries is the
// number of partitions whose primary changed, owners the number of
// (partition, member) ownerships in to that were not in from, i.e. the
// partition copies the change needs. It panics if the partition counts differ.
func Moves(from, to *Table) (primaries, owners int) {
	if from.partitions != to.partitions {
		panic(fmt.Sprintf("partition: Moves between %d and %d partitions", from.partitions, to.partitions))
	}
	for p := range to.owners {
		if from.Primary(p) != to.Primary(p) {
			primaries++
		}
		for _, m := range to.owners[p] {
			if !slices.Contains(from.owners[p], m) {
				owners++
			}
		}
	}
	return primaries, owners
}

// tableJSON is the wire shape of a Table.
type tableJSON struct {
	Partitions int        `json:"partitions"`
	Replicas   int        `json:"replicas"`
	Members    []string   `json:"members"`
	Owners     [][]string `json:"owners"` // per partition, primary first
	Version    uint64     `json:"version"`

	Zones    map[string]string `json:"zones,omitempty"`    // member → zone, zoned tables only
	Unspread []int             `json:"unspread,omitempty"` // partitions not spread over replicas zones, zoned tables only
}

// MarshalJSON encodes the table as {"partitions", "replicas", "members",
// "owners", "version"}.
func (t Table) MarshalJSON() ([]byte, error) {
	return json.Marshal(tableJSON{
		Partitions: t.partitions,
		Replicas:   t.replicas,
		Members:    t.Members(),
		Owners:     t.owners,
		Version:    t.Version,
		Zones:      t.zoneMap(),
		Unspread:   t.unspread,
	})
}

// UnmarshalJSON decodes what MarshalJSON encodes, checking that it is a
// consistent table (not that Compute would produce it); errors wrap
// ErrBadTable.
func (t *Table) UnmarshalJSON(b []byte) error {
	var j tableJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("%w: %w", ErrBadTable, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadTable}, args...)...)
	}
	switch {
	case j.Partitions < 1:
		return bad("%d partitions", j.Partitions)
	case j.Replicas < 0 || j.Replicas > len(j.Members) || j.Replicas == 0 && len(j.Members) > 0:
		return bad("%d replicas for %d members", j.Replicas, len(j.Members))
	case !sort.StringsAreSorted(j.Members) || len(slices.Compact(slices.Clone(j.Members))) != len(j.Members):
		return bad("members not sorted and distinct")
	case len(j.Owners) != j.Partitions:
		return bad("owners for %d partitions, want %d", len(j.Owners), j.Partitions)
	}
	for p, o := range j.Owners {
		if len(o) != j.Replicas {
			return bad("partition %d has %d owners, want %d", p, len(o), j.Replicas)
		}
		for i, m := range o {
			if _, found := slices.BinarySearch(j.Members, m); !found || slices.Contains(o[:i], m) {
				return bad("partition %d: owner %q unknown or repeated", p, m)
			}
		}
		if o == nil {
			o = []string{}
		}
		j.Owners[p] = o[:len(o):len(o)]
	}
	if j.Members == nil {
		j.Members = []string{}
	}
	var zones []string
	if j.Zones != nil {
		zones = make([]string, len(j.Members))
		for m, z := range j.Zones {
			i, found := slices.BinarySearch(j.Members, m)
			if !found {
				return bad("zone of %q, not a member", m)
			}
			zones[i] = z
		}
		if !slices.IsSorted(j.Unspread) || len(slices.Compact(slices.Clone(j.Unspread))) != len(j.Unspread) ||
			len(j.Unspread) > 0 && (j.Unspread[0] < 0 || j.Unspread[len(j.Unspread)-1] >= j.Partitions) {
			return bad("unspread partitions not ascending, distinct and in range")
		}
		if j.Unspread == nil {
			j.Unspread = []int{}
		}
	} else if len(j.Unspread) > 0 {
		return bad("unspread partitions without zones")
	}
	*t = Table{Version: j.Version, partitions: j.Partitions, replicas: j.Replicas, members: j.Members, owners: j.Owners,
		zones: zones, unspread: j.Unspread}
	return nil
}
