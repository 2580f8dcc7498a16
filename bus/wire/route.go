package wire

import (
	"strconv"
	"strings"
)

// Routing of the text API by NATS itself (docs/PROTOCOL.md, "Routing"): a
// subject mapping of the server turns "<prefix>.<op>.<key>" into
// "<prefix>.t.<partition>.<op>.<key>", the partition computed by the
// server's {{partition(P, ...)}} over the key's tokens, which is
// partition.Of; the primary of each partition subscribes to
// "<prefix>.t.<partition>.>", so the request reaches it with no hop.

// routedSubj is the token after the prefix of a routed text-API subject.
const routedSubj = "t"

// MaxRoutedTokens is the most tokens a key may have for the server to route
// it: a mapping takes a fixed number of "*" tokens, so there is one mapping
// per op and key length. Longer keys reach any node and are forwarded.
const MaxRoutedTokens = 4

// Mapping is one subject mapping of a NATS account: messages published on
// Src go to Dest ("mappings" in the server configuration).
type Mapping struct {
	Src  string
	Dest string
}

// Text is the text-API subject of op ("get", "set", ...) on key.
func (s Subjects) Text(op, key string) string { return s.prefix + "." + op + "." + key }

// Routed is the subject a text-API request of op on key travels on once
// the server has mapped it to key's partition p.
func (s Subjects) Routed(p int, op, key string) string {
	return s.prefix + "." + routedSubj + "." + strconv.Itoa(p) + "." + op + "." + key
}

// RoutedPartition is the wildcard subject of every routed text-API request
// of partition p: its primary subscribes to it.
func (s Subjects) RoutedPartition(p int) string {
	return s.prefix + "." + routedSubj + "." + strconv.Itoa(p) + ".>"
}

// ParseRouted splits a routed subject into its partition, op and key;
// ok=false when subject is not "<prefix>.t.<partition>.<op>.<key>".
func (s Subjects) ParseRouted(subject string) (p int, op, key string, ok bool) {
	rest, ok := strings.CutPrefix(subject, s.prefix+"."+routedSubj+".")
	if !ok {
		return 0, "", "", false
	}
	num, rest, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, "", "", false
	}
	p, err := strconv.Atoi(num)
	if err != nil || p < 0 {
		return 0, "", "", false
	}
	op, key, ok = strings.Cut(rest, ".")
	if !ok || op == "" || key == "" {
		return 0, "", "", false
	}
	return p, op, key, true
}

// TextMappings are the subject mappings that route the text API's ops to
// their key's partition, for a cluster of the given partition count: one
// per op and key length of 1 to MaxRoutedTokens tokens, e.g.
//
//	roost.get.*.* -> roost.t.{{partition(271,1,2)}}.get.{{wildcard(1)}}.{{wildcard(2)}}
//
// NATS hashes the key's tokens concatenated, with FNV-1a 32: partition.Of.
func (s Subjects) TextMappings(ops []string, partitions int) []Mapping {
	var ms []Mapping
	for k := 1; k <= MaxRoutedTokens; k++ {
		idx := make([]string, k)
		stars := make([]string, k)
		tokens := make([]string, k)
		for i := range k {
			idx[i] = strconv.Itoa(i + 1)
			stars[i] = "*"
			tokens[i] = "{{wildcard(" + idx[i] + ")}}"
		}
		for _, op := range ops {
			ms = append(ms, Mapping{
				Src: s.prefix + "." + op + "." + strings.Join(stars, "."),
				Dest: s.prefix + "." + routedSubj + ".{{partition(" + strconv.Itoa(partitions) + "," + strings.Join(idx, ",") + ")}}." +
					op + "." + strings.Join(tokens, "."),
			})
		}
	}
	return ms
}

// MappingsConf renders ms as the "mappings" block of a nats-server
// configuration file, for the operator of an external NATS.
func MappingsConf(ms []Mapping) string {
	width := 0
	for _, m := range ms {
		width = max(width, len(m.Src)+3)
	}
	var b strings.Builder
	b.WriteString("mappings = {\n")
	for _, m := range ms {
		src := strconv.Quote(m.Src) + ":"
		b.WriteString("  " + src + strings.Repeat(" ", width-len(src)+1) + strconv.Quote(m.Dest) + "\n")
	}
	b.WriteString("}\n")
	return b.String()
}
