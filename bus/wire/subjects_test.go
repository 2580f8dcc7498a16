package wire

import "testing"

func TestSubjects(t *testing.T) {
	s := NewSubjects("")
	if s.Get("a.b.c") != "roost.get.a.b.c" || s.SetAll() != "roost.set.>" || s.Batch() != "roost.bin.batch" {
		t.Fatalf("subjects: %s %s %s", s.Get("a.b.c"), s.SetAll(), s.Batch())
	}
	for _, tc := range []struct {
		op, subject, key string
		ok               bool
	}{
		{"get", "roost.get.a.b.c", "a.b.c", true},
		{"del", "roost.del.x", "x", true},
		{"get", "roost.get.", "", false},
		{"get", "roost.set.x", "", false},
		{"frob", "roost.frob.x", "", false},
		{"incr", "roost.incr.page.views", "page.views", true},
		{"touch", "roost.touch.s", "s", true},
		{"incr", "roost.touch.s", "", false},
	} {
		key, ok := s.TextKey(tc.op, tc.subject)
		if key != tc.key || ok != tc.ok {
			t.Errorf("TextKey(%s, %s) = %q, %v; want %q, %v", tc.op, tc.subject, key, ok, tc.key, tc.ok)
		}
	}
	if s.Incr("c") != "roost.incr.c" || s.IncrAll() != "roost.incr.>" || s.Touch("c") != "roost.touch.c" || s.TouchAll() != "roost.touch.>" {
		t.Fatalf("counter subjects: %s %s %s %s", s.Incr("c"), s.IncrAll(), s.Touch("c"), s.TouchAll())
	}
	if c := NewSubjects("cache.eu"); c.Del("k") != "cache.eu.del.k" || c.Status() != "cache.eu.admin.status" {
		t.Fatalf("prefixed subjects: %s %s", c.Del("k"), c.Status())
	}
}

func TestCodecRoundTrip(t *testing.T) {
	cas := uint64(0)
	in := BatchRequest{Ack: AckAll, Ops: []Request{{Op: OpSet, Key: "k", Value: []byte{0, 1, 2}, TTL: 1500, Flags: 7, CAS: &cas}}}
	data, err := Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out BatchRequest
	if err := Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	got := out.Ops[0]
	if out.Ack != AckAll || got.Key != "k" || string(got.Value) != "\x00\x01\x02" || got.TTL != 1500 || got.Flags != 7 || got.CAS == nil || *got.CAS != 0 {
		t.Fatalf("round trip: %+v", out)
	}
	if err := Unmarshal([]byte{0xc1}, &out); err == nil {
		t.Fatal("decoded a malformed payload")
	}
}
