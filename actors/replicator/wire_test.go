package replicator

import (
	"bytes"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/internal/mpack"
	"github.com/roostkv/roost/internal/mpack/mpacktest"
)

// The hand-written codec of the replication log (wire_codec.go) is checked
// against msgpack's reflection on mirror types: the same fields and tags,
// no methods. Encoding must give the same bytes; decoding any bytes must
// give the same value, or fail on both sides.

type mirrorEntry struct {
	P       int    `msgpack:"p"`
	Term    uint64 `msgpack:"t"`
	Seq     uint64 `msgpack:"s"`
	Key     string `msgpack:"k"`
	Value   []byte `msgpack:"v,omitempty"`
	Version uint64 `msgpack:"ver"`
	Created uint64 `msgpack:"c,omitempty"`
	Flags   uint64 `msgpack:"f,omitempty"`
	Expires int64  `msgpack:"x,omitempty"`
	Deleted bool   `msgpack:"d,omitempty"`
}

type mirrorBatch struct {
	P       int           `msgpack:"p"`
	Entries []mirrorEntry `msgpack:"e"`
}

// mirrorResponse is FetchResponse with mirrored entries: Entry encoded
// inside a value msgpack reflects over (EncodeMsgpack, DecodeMsgpack).
type mirrorResponse struct {
	P         int           `msgpack:"p"`
	From      string        `msgpack:"from"`
	Req       uint64        `msgpack:"req"`
	Entries   []mirrorEntry `msgpack:"entries,omitempty"`
	Truncated bool          `msgpack:"truncated,omitempty"`
	Refused   string        `msgpack:"refused,omitempty"`
}

func toMirrorBatch(x Batch) mirrorBatch {
	return mirrorBatch{P: x.P, Entries: mpacktest.ConvertSlice(x.Entries, func(e Entry) mirrorEntry { return mirrorEntry(e) })}
}

func fromMirrorBatch(m mirrorBatch) Batch {
	return Batch{P: m.P, Entries: mpacktest.ConvertSlice(m.Entries, func(e mirrorEntry) Entry { return Entry(e) })}
}

func toMirrorResponse(x FetchResponse) mirrorResponse {
	return mirrorResponse{P: x.P, From: x.From, Req: x.Req, Truncated: x.Truncated, Refused: x.Refused,
		Entries: mpacktest.ConvertSlice(x.Entries, func(e Entry) mirrorEntry { return mirrorEntry(e) })}
}

func fromMirrorResponse(m mirrorResponse) FetchResponse {
	return FetchResponse{P: m.P, From: m.From, Req: m.Req, Truncated: m.Truncated, Refused: m.Refused,
		Entries: mpacktest.ConvertSlice(m.Entries, func(e mirrorEntry) Entry { return Entry(e) })}
}

// codec is this package's hand-written entry points, for mpacktest.
var codec = mpacktest.Codec{Marshal: wire.Marshal, Unmarshal: wire.Unmarshal}

func checkEncode[T, M any](t *testing.T, v T, mirror func(T) M, back func(M) T) {
	t.Helper()
	mpacktest.CheckEncode(t, codec, v, mirror, back)
}

func checkDecode[T, M any](t *testing.T, data []byte, back func(M) T) bool {
	t.Helper()
	return mpacktest.CheckDecode(t, codec, data, back)
}

func sampleEntries() []Entry {
	entries := []Entry{
		{},
		{P: 3, Term: 1, Seq: 1, Key: "k", Value: []byte("v"), Version: 10, Created: 9, Flags: 7, Expires: 1700000000000000000},
		{P: 127, Term: 2, Seq: 2, Key: "k", Version: 11, Deleted: true}, // a tombstone
		{P: 128, Key: "k", Value: []byte{}, Version: 12},                // empty value: omitted, as today
		{P: 65535, Term: math.MaxUint64, Seq: math.MaxUint64, Key: "\x00\xff binary", Version: math.MaxUint64, Flags: math.MaxUint64, Expires: math.MinInt64},
		{P: 65536, Key: strings.Repeat("k", 300), Value: bytes.Repeat([]byte{0xc1}, 70000)},
		{P: -1}, {P: -33}, {P: -129}, {P: math.MinInt32}, {P: math.MaxInt64}, {P: math.MinInt64}, // Go ints are compact
	}
	return entries
}

func TestBatchEncodesAsReflection(t *testing.T) {
	entries := sampleEntries()
	cases := []Batch{{}, {P: 1, Entries: []Entry{}}, {P: 2, Entries: entries}, {P: 4, Entries: make([]Entry, 16)}}
	for _, e := range entries {
		cases = append(cases, Batch{P: e.P, Entries: []Entry{e}})
	}
	for _, c := range cases {
		checkEncode(t, c, toMirrorBatch, fromMirrorBatch)
	}
}

// Entries inside a FetchResponse, which msgpack encodes by reflection, go
// through EncodeMsgpack and DecodeMsgpack: the same bytes as reflection's.
func TestResponseEntriesEncodeAsReflection(t *testing.T) {
	for _, c := range []FetchResponse{
		{},
		{Entries: []Entry{}},
		{P: 3, From: "n1", Req: 9, Entries: sampleEntries()},
		{Refused: "not primary", Truncated: true},
	} {
		checkEncode(t, c, toMirrorResponse, fromMirrorResponse)
	}
	checkDecode(t, mpack.AppendString(mpack.AppendMapHeader(nil, 1), "entries"), fromMirrorResponse) // truncated
	data := mpack.AppendArrayHeader(mpack.AppendString(mpack.AppendMapHeader(nil, 1), "entries"), 2)
	data = append(data, 0xc0, 0x80)
	checkDecode(t, data, fromMirrorResponse) // a nil entry, an empty one
}

type raw = mpacktest.Raw

func wireMap(t *testing.T, pairs ...any) raw { t.Helper(); return mpacktest.Map(t, pairs...) }

func array(elems ...raw) raw { return mpacktest.Array(elems...) }

func bin(s string) raw { return mpacktest.Bin(s) }

func TestBatchDecodesAsReflection(t *testing.T) {
	e := wireMap(t, "p", 1, "t", 2, "s", 3, "k", "k", "v", bin("v"), "ver", 4, "c", 5, "f", 6, "x", -7, "d", true)
	cases := map[string]raw{
		"nil":             {0xc0},
		"empty":           wireMap(t),
		"nil entries":     wireMap(t, "p", 1, "e", nil),
		"entries":         wireMap(t, "p", 1, "e", array(e, raw{0xc0}, wireMap(t))),
		"any order":       wireMap(t, "e", array(wireMap(t, "d", false, "ver", raw{0xcc, 200}, "k", bin("\x00key"), "p", raw{0xd0, 0x80})), "p", raw{0xcf, 0, 0, 0, 0, 0, 0, 0, 5}),
		"unknown":         wireMap(t, "zz", array(e), "p", 1, "e", array(wireMap(t, "k", "k", "zz", map[string]any{"a": []int{1}}))),
		"nil fields":      wireMap(t, "p", nil, "e", array(wireMap(t, "p", nil, "k", nil, "v", nil, "d", nil, "x", nil))),
		"as array":        array(raw{2}, array(array(raw{1}, raw{2}, raw{3}, raw(mpack.AppendString(nil, "k")), bin("v"), raw{4}, raw{5}, raw{6}, raw{0xff}, raw{0xc3}))),
		"short array":     array(raw{2}),
		"p too wide":      wireMap(t, "p", raw{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
		"deleted as int":  wireMap(t, "e", array(wireMap(t, "d", 1))),
		"version as str":  wireMap(t, "e", array(wireMap(t, "ver", "1"))),
		"entries as map":  wireMap(t, "e", map[string]any{}),
		"reserved code":   {0xc1},
		"repeated fields": wireMap(t, "e", array(e, e), "e", array(wireMap(t, "k", "b")), "p", 1, "p", 2),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) { checkDecode(t, data, fromMirrorBatch) })
	}
	full := wireMap(t, "p", 1, "e", array(e, e))
	for n := range full {
		if checkDecode(t, full[:n], fromMirrorBatch) {
			t.Fatalf("decoded %d bytes of %d", n, len(full))
		}
	}
}

// TestWireCodecFieldsMatchTags fails when a field is added to Entry or
// Batch and not to its hand-written codec (and its mirror here).
func TestWireCodecFieldsMatchTags(t *testing.T) {
	for _, c := range []struct {
		typ, mirror any
		fields      []string
	}{
		{Entry{}, mirrorEntry{}, entryFields},
		{Batch{}, mirrorBatch{}, batchFields},
	} {
		mpacktest.CheckFields(t, reflect.TypeOf(c.typ), reflect.TypeOf(c.mirror), c.fields)
	}
}

// FuzzEntryCodec encodes a batch of random entries by hand and by
// reflection, and decodes the bytes both ways.
func FuzzEntryCodec(f *testing.F) {
	f.Add(3, uint64(1), uint64(2), "k", []byte("v"), uint64(3), uint64(4), uint64(5), int64(6), false)
	f.Add(-1, uint64(0), uint64(0), "\x00\xff", []byte(nil), uint64(0), uint64(0), uint64(0), int64(-1), true)
	f.Fuzz(func(t *testing.T, p int, term, seq uint64, key string, value []byte, version, created, flags uint64, expires int64, deleted bool) {
		e := Entry{P: p, Term: term, Seq: seq, Key: key, Value: value, Version: version, Created: created, Flags: flags, Expires: expires, Deleted: deleted}
		checkEncode(t, Batch{P: p, Entries: []Entry{e, {Key: key}, e}}, toMirrorBatch, fromMirrorBatch)
	})
}

// FuzzBatchDecode decodes random bytes by hand and by reflection, when they
// are one msgpack value whose lengths fit in them (otherwise reflection may
// allocate gigabytes; the hand decoder must fail), and re-encodes what
// decoded both ways.
func FuzzBatchDecode(f *testing.F) {
	data, _ := wire.Marshal(Batch{P: 1, Entries: sampleEntries()[:3]})
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		mpacktest.FuzzDecode(t, codec, data, fromMirrorBatch, toMirrorBatch)
	})
}

// BenchmarkCodec compares the hand-written codec of a log batch of 10
// entries (100-byte values) with msgpack's reflection on its mirror, which
// it replaced.
//
//	go test -run '^$' -bench 'Codec' -benchtime 1s -count 5 ./bus/ ./actors/replicator/
func BenchmarkCodec(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 100)
	log := Batch{P: 17}
	for i := range 10 {
		log.Entries = append(log.Entries, Entry{P: 17, Term: 3, Seq: 1000 + uint64(i), Key: "key" + strconv.Itoa(i*3001),
			Value: value, Version: 1779000000000000 + uint64(i), Created: 1779000000000000})
	}
	mpacktest.Bench(b, codec, "ReplicationBatch-10", log, toMirrorBatch)
}

type mirrorAck struct {
	P    int    `msgpack:"p"`
	Term uint64 `msgpack:"t"`
	Seq  uint64 `msgpack:"s"`
	Node string `msgpack:"n"`
}

type mirrorAckSet struct {
	Acks []mirrorAck `msgpack:"a"`
}

func toMirrorAckSet(x ackSet) mirrorAckSet {
	return mirrorAckSet{Acks: mpacktest.ConvertSlice(x.Acks, func(a Ack) mirrorAck { return mirrorAck(a) })}
}

func fromMirrorAckSet(m mirrorAckSet) ackSet {
	return ackSet{Acks: mpacktest.ConvertSlice(m.Acks, func(a mirrorAck) Ack { return Ack(a) })}
}

// An ack set (and a lone Ack, sent on the ack subject to a replica of a
// build before envelopes) encodes by hand as reflection encodes it, and
// decodes what reflection decodes.
func TestAckSetCodecAsReflection(t *testing.T) {
	acks := []Ack{{}, {P: 3, Term: 1, Seq: 2, Node: "n1"}, {P: 270, Term: math.MaxUint64, Seq: math.MaxUint64, Node: strings.Repeat("n", 40)}, {P: -1}, {P: math.MaxInt64}}
	for _, c := range []ackSet{{}, {Acks: []Ack{}}, {Acks: acks}} {
		checkEncode(t, c, toMirrorAckSet, fromMirrorAckSet)
	}
	for _, a := range acks {
		checkEncode(t, a, func(a Ack) mirrorAck { return mirrorAck(a) }, func(m mirrorAck) Ack { return Ack(m) })
	}
	a := wireMap(t, "p", 1, "t", 2, "s", 3, "n", "n2")
	cases := map[string]raw{
		"nil":           {0xc0},
		"empty":         wireMap(t),
		"nil acks":      wireMap(t, "a", nil),
		"acks":          wireMap(t, "a", array(a, raw{0xc0}, wireMap(t))),
		"any order":     wireMap(t, "a", array(wireMap(t, "n", bin("n3"), "s", raw{0xcc, 200}, "p", raw{0xd0, 0x80}))),
		"unknown":       wireMap(t, "zz", 1, "a", array(wireMap(t, "zz", array(a), "p", 2))),
		"as array":      array(array(array(raw{1}, raw{2}, raw{3}, raw(mpack.AppendString(nil, "n"))))),
		"seq as str":    wireMap(t, "a", array(wireMap(t, "s", "1"))),
		"acks as map":   wireMap(t, "a", map[string]any{}),
		"reserved code": {0xc1},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) { checkDecode(t, data, fromMirrorAckSet) })
	}
	full := wireMap(t, "a", array(a, a))
	for n := range full {
		if checkDecode(t, full[:n], fromMirrorAckSet) {
			t.Fatalf("decoded %d bytes of %d", n, len(full))
		}
	}
	mpacktest.CheckFields(t, reflect.TypeOf(Ack{}), reflect.TypeOf(mirrorAck{}), ackFields)
	mpacktest.CheckFields(t, reflect.TypeOf(ackSet{}), reflect.TypeOf(mirrorAckSet{}), ackSetFields)
}

// A replica decodes a batch's values in place (decodeView): the values it
// applies share the message's bytes, so the store must keep copies of its
// own. Overwriting the message after the apply changes nothing stored.
func TestBatchViewValuesAreCopiedByTheStore(t *testing.T) {
	st, err := store.New(store.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	st.Start()
	t.Cleanup(st.Stop)
	in := Batch{P: 1, Entries: []Entry{
		{P: 1, Term: 1, Seq: 1, Key: "a", Value: []byte("value of a"), Version: 10, Created: 10},
		{P: 1, Term: 1, Seq: 2, Key: "b", Value: bytes.Repeat([]byte{'b'}, 5000), Version: 11, Created: 11},
	}}
	data := in.AppendMsgpack(nil)
	var b Batch
	if err := b.decodeView(data); err != nil {
		t.Fatal(err)
	}
	for i := range b.Entries {
		if !bytes.Equal(b.Entries[i].Value, in.Entries[i].Value) {
			t.Fatalf("entry %d: value %q, want %q", i, b.Entries[i].Value, in.Entries[i].Value)
		}
		if _, err := st.Apply(b.Entries[i].record()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range data {
		data[i] = 0xff
	}
	for _, e := range in.Entries {
		got, err := st.Get(e.Key)
		if err != nil || !bytes.Equal(got.Value, e.Value) {
			t.Fatalf("%s: stored %q (%v) after its message was overwritten, want %q", e.Key, got.Value, err, e.Value)
		}
	}
	// The view's values end where they end: appending to one does not
	// write over the next field of the message.
	var v Batch
	if err := v.decodeView(in.AppendMsgpack(nil)); err != nil {
		t.Fatal(err)
	}
	if c := cap(v.Entries[0].Value); c != len(v.Entries[0].Value) {
		t.Fatalf("a view's capacity is %d, its length %d", c, len(v.Entries[0].Value))
	}
}
