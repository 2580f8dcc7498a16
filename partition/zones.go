package partition

import "slices"

// # Zone-aware placement
//
// ComputeZoned is Compute with a zone (the value of a placement tag, such as
// zone=a) per member. Slots 0..S-1 of every partition, S = min(R, Z) for Z
// distinct zones among the members, must hold members of distinct zones; the
// rounds, scores and quotas are those of Compute, with one more condition
// wherever a member is chosen for such a slot: its zone is not among the
// partition's owners' zones yet. So:
//
//   - with Z ≥ R, no partition has two owners in one zone, and losing a whole
//     zone leaves every partition at least R-1 copies;
//   - with Z < R, each partition spans all Z zones and the rest of its owners
//     go where room is; Unspread lists every partition (it could not be
//     spread over R zones).
//
// The swap that frees a member near the end of a round keeps zones distinct
// too. Should neither the rounds nor the swap find a member in a free zone
// with room (a zone holding more than N/R of the members cannot take its
// even share, since it may hold only one copy of each partition), the
// partition takes the best-scoring member of a free zone over quota: spread
// wins over balance, so members of an oversized zone hold fewer copies.
// A member with no value for the tag is in the zone "" (which counts as one
// zone). A partition listed by Unspread is never silently accepted: the node
// shows it on /v1/roost/status, the partition table and the dashboard.

// ComputeZoned returns the table of members spread over zones: zoneOf maps a
// member's name to its zone (missing = ""). With zoneOf nil it is Compute.
// Like Compute it is pure and deterministic: the same members and zones give
// the same table, whatever the order.
func ComputeZoned(members []string, zoneOf map[string]string, partitions, replicas int) *Table {
	if zoneOf == nil {
		zoneOf = map[string]string{}
	}
	return compute(members, zoneOf, partitions, replicas)
}

// zoneIndex numbers the zones by sorted name: zone index per member.
func zoneIndex(zones []string) []int {
	names := slices.Clone(zones)
	slices.Sort(names)
	names = slices.Compact(names)
	idx := make([]int, len(zones))
	for i, z := range zones {
		idx[i], _ = slices.BinarySearch(names, z)
	}
	return idx
}

// zoneCount is the number of distinct zones, 0 without zones.
func zoneCount(zone []int) int {
	if zone == nil {
		return 0
	}
	return len(slices.Compact(slices.Sorted(slices.Values(zone))))
}

// zoneTaken reports whether member i may not take the slot being filled of
// partition p (the round's) because its zone already holds one of p's
// spread slots.
func (a *assigner) zoneTaken(p, i int) bool {
	if a.zone == nil || a.round >= a.spread {
		return false
	}
	for _, o := range a.owners(p, p) {
		if a.zone[o] == a.zone[i] {
			return true
		}
	}
	return false
}

// zoneClash reports whether member i may not replace slot j of owners
// because another spread slot holds a member of its zone.
func (a *assigner) zoneClash(owners []int, j, i int) bool {
	if a.zone == nil || j >= a.spread {
		return false
	}
	for k, o := range owners[:min(len(owners), a.spread)] {
		if k != j && a.zone[o] == a.zone[i] {
			return true
		}
	}
	return false
}

// unspread returns the partitions whose r owners (member indices in own) are
// not in r distinct zones, ascending; an empty, non-nil slice when all are.
func unspread(own, zone []int, partitions, r int) []int {
	out := []int{}
	seen := make([]bool, len(zone))
	for p := range partitions {
		distinct := 0
		for _, m := range own[p*r : (p+1)*r] {
			if !seen[zone[m]] {
				seen[zone[m]] = true
				distinct++
			}
		}
		for _, m := range own[p*r : (p+1)*r] {
			seen[zone[m]] = false
		}
		if distinct < r {
			out = append(out, p)
		}
	}
	return out
}

// Zoned reports whether the table was computed with zones (ComputeZoned).
func (t *Table) Zoned() bool { return t.zones != nil }

// Zone returns the zone of member name, and whether the table has zones and
// that member.
func (t *Table) Zone(name string) (string, bool) {
	i, found := slices.BinarySearch(t.members, name)
	if !found || t.zones == nil {
		return "", false
	}
	return t.zones[i], true
}

// Zones returns the distinct zones of the members, sorted; nil without zones.
func (t *Table) Zones() []string {
	if t.zones == nil {
		return nil
	}
	return slices.Compact(slices.Sorted(slices.Values(t.zones)))
}

// Unspread returns the partitions whose owners are not in Replicas()
// distinct zones, ascending (shared: do not modify); nil without zones. It
// is empty whenever at least Replicas() zones have members.
func (t *Table) Unspread() []int { return t.unspread[:len(t.unspread):len(t.unspread)] }

// zoneMap is the member → zone map the table was computed from, nil without
// zones.
func (t *Table) zoneMap() map[string]string {
	if t.zones == nil {
		return nil
	}
	m := make(map[string]string, len(t.members))
	for i, name := range t.members {
		m[name] = t.zones[i]
	}
	return m
}
