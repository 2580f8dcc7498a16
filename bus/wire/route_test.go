package wire

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/roostkv/roost/partition"
)

func TestRoutedSubjects(t *testing.T) {
	s := NewSubjects("")
	if got := s.Routed(48, "get", "a.b"); got != "roost.t.48.get.a.b" {
		t.Fatalf("Routed = %s", got)
	}
	if got := s.RoutedPartition(7); got != "roost.t.7.>" {
		t.Fatalf("RoutedPartition = %s", got)
	}
	for _, tc := range []struct {
		subject string
		p       int
		op, key string
		ok      bool
	}{
		{"roost.t.48.get.a.b.c", 48, "get", "a.b.c", true},
		{"roost.t.0.set.k", 0, "set", "k", true},
		{"roost.t.x.get.k", 0, "", "", false},
		{"roost.t.-1.get.k", 0, "", "", false},
		{"roost.t.3.get", 0, "", "", false},
		{"roost.t.3", 0, "", "", false},
		{"roost.get.k", 0, "", "", false},
		{"other.t.3.get.k", 0, "", "", false},
	} {
		p, op, key, ok := s.ParseRouted(tc.subject)
		if p != tc.p || op != tc.op || key != tc.key || ok != tc.ok {
			t.Errorf("ParseRouted(%s) = %d %q %q %v; want %d %q %q %v", tc.subject, p, op, key, ok, tc.p, tc.op, tc.key, tc.ok)
		}
	}
	ms := NewSubjects("cache.eu").TextMappings([]string{"get", "set"}, 271)
	if len(ms) != 2*MaxRoutedTokens {
		t.Fatalf("%d mappings, want %d", len(ms), 2*MaxRoutedTokens)
	}
	want := Mapping{Src: "cache.eu.set.*.*", Dest: "cache.eu.t.{{partition(271,1,2)}}.set.{{wildcard(1)}}.{{wildcard(2)}}"}
	if ms[3] != want {
		t.Fatalf("mapping = %+v, want %+v", ms[3], want)
	}
}

// TestTextMappingsArePartitionOf is the property the routing rests on: for
// random keys of 1 to MaxRoutedTokens tokens, the subject NATS's own
// transform of the matching mapping gives is the routed subject of the key's
// partition as Roost computes it, and the key comes through unchanged.
func TestTextMappingsArePartitionOf(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 1))
	ops := []string{"get", "set", "del"}
	for _, prefix := range []string{"roost", "cache.eu"} {
		s := NewSubjects(prefix)
		for _, partitions := range []int{1, 7, 271, 1021} {
			ms := s.TextMappings(ops, partitions)
			transforms := make([]server.SubjectTransformer, len(ms))
			for i, m := range ms {
				tr, err := server.NewSubjectTransform(m.Src, m.Dest)
				if err != nil {
					t.Fatalf("mapping %+v: %v", m, err)
				}
				transforms[i] = tr
			}
			for range 2000 {
				key := randomKey(rng, 1+rng.IntN(MaxRoutedTokens))
				op := ops[rng.IntN(len(ops))]
				subject := s.Text(op, key)
				matched := 0
				for i, m := range ms {
					if !server.SubjectMatchesFilter(subject, m.Src) {
						continue
					}
					matched++
					got, err := transforms[i].Match(subject)
					if err != nil {
						t.Fatalf("transform %s by %+v: %v", subject, m, err)
					}
					if want := s.Routed(partition.Of(key, partitions), op, key); got != want {
						t.Fatalf("P=%d: NATS maps %s to %s, Roost routes it to %s", partitions, subject, got, want)
					}
				}
				if matched != 1 {
					t.Fatalf("%s matches %d mappings, want 1", subject, matched)
				}
			}
			// A longer key matches no mapping: it is served where it lands.
			long := s.Text("get", randomKey(rng, MaxRoutedTokens+1))
			for _, m := range ms {
				if server.SubjectMatchesFilter(long, m.Src) {
					t.Fatalf("%s matches %s", long, m.Src)
				}
			}
		}
	}
}

// randomKey is a key of n tokens of printable bytes (and some UTF-8) that a
// NATS subject may carry: no dot, space or wildcard token.
func randomKey(rng *rand.Rand, n int) string {
	const alphabet = "abcxyzABC0123456789-_:/#@!~é日"
	runes := []rune(alphabet)
	tokens := make([]string, n)
	for i := range tokens {
		var b strings.Builder
		for range 1 + rng.IntN(12) {
			b.WriteRune(runes[rng.IntN(len(runes))])
		}
		tokens[i] = b.String()
	}
	return strings.Join(tokens, ".")
}
