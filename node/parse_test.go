package node

import (
	"testing"
	"time"
)

func TestParseTTL(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"30", 30 * time.Second, false},
		{" 30 ", 30 * time.Second, false},
		{"1.5s", 1500 * time.Millisecond, false},
		{"10m", 10 * time.Minute, false},
		{"-1", 0, true},
		{"-1s", 0, true},
		{"1.5", 0, true}, // fractional seconds need a unit
		{"banana", 0, true},
		{"9223372036854775807", 0, true}, // seconds beyond MaxTTL
		{"1000000h", 0, true},            // beyond MaxTTL
	}
	for _, tt := range tests {
		got, err := ParseTTL(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseTTL(%q) = %v, %v; want %v, bad=%v", tt.in, got, err, tt.want, tt.bad)
		}
		if _, err := parseTTL(tt.in); err != nil && codeOf(err) != 400 {
			t.Errorf("parseTTL(%q) error has code %d, want 400", tt.in, codeOf(err))
		}
	}
}

func TestParseAckAndUint(t *testing.T) {
	for in, want := range map[string]string{"": "primary", "primary": "primary", "all": "all"} {
		if got, err := parseAck(in); err != nil || got != want {
			t.Errorf("parseAck(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"maybe", "ALL", "primary,all"} {
		if _, err := parseAck(in); err == nil || codeOf(err) != 400 {
			t.Errorf("parseAck(%q) = %v, want a 400", in, err)
		}
	}
	if v, err := parseUint(hdrCAS, "18446744073709551615"); err != nil || v != 1<<64-1 {
		t.Errorf("parseUint(max) = %d, %v", v, err)
	}
	for _, in := range []string{"xyz", "-1", "18446744073709551616", "1e3", ""} {
		if _, err := parseUint(hdrCAS, in); err == nil || codeOf(err) != 400 {
			t.Errorf("parseUint(%q) = %v, want a 400", in, err)
		}
	}
}

func TestSoftMemoryLimit(t *testing.T) {
	for in, want := range map[int64]int64{
		0:        0,
		-1:       0,
		64 << 20: 72<<20 + 16<<20,
		1 << 30:  1152<<20 + 16<<20,
	} {
		if got := SoftMemoryLimit(in); got != want {
			t.Errorf("SoftMemoryLimit(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestHeapLimit(t *testing.T) {
	for _, tc := range []struct{ max, off, want int64 }{
		{0, 1 << 20, 0},                        // no budget, no limit
		{1 << 30, 0, 1152<<20 + 16<<20},        // nothing mapped yet: SoftMemoryLimit
		{1 << 30, 512 << 20, 640<<20 + 16<<20}, // half the data mapped: the heap's share shrinks
		{1 << 30, 1 << 30, 128<<20 + 32<<20},   // a full store: the floor, the log's eighth + 32 MiB
		{64 << 20, 200 << 20, 8<<20 + 32<<20},  // mapped beyond the budget: still the floor
	} {
		if got := HeapLimit(tc.max, tc.off); got != tc.want {
			t.Errorf("HeapLimit(%d, %d) = %d, want %d", tc.max, tc.off, got, tc.want)
		}
	}
}

func TestWildcardToken(t *testing.T) {
	for _, tc := range []struct {
		key string
		pos int
		tok string
	}{
		{"a.b", 0, ""},
		{"a*", 0, ""},
		{"a.b*", 0, ""},
		{"a.*b", 0, ""},
		{"x>y", 0, ""},
		{"a.>>", 0, ""},
		{"conf/*", 0, ""},
		{"*", 1, "*"},
		{">", 1, ">"},
		{"a.*", 2, "*"},
		{"a.>", 2, ">"},
		{"users.*.name", 2, "*"},
		{"a.b.>", 3, ">"},
		{"*.>", 1, "*"},
	} {
		if pos, tok := wildcardToken(tc.key); pos != tc.pos || tok != tc.tok {
			t.Errorf("wildcardToken(%q) = %d %q, want %d %q", tc.key, pos, tok, tc.pos, tc.tok)
		}
	}
}
