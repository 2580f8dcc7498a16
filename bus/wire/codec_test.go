package wire

import (
	"bytes"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/roostkv/roost/internal/mpack"
	"github.com/roostkv/roost/internal/mpack/mpacktest"
)

// The hand-written codec of the batch payloads (wire_codec.go) is checked
// against msgpack's reflection on mirror types: the same fields and tags,
// no methods. Encoding must give the same bytes; decoding any bytes must
// give the same value, or fail on both sides.

type mirrorRequest struct {
	Op    Op      `msgpack:"op"`
	Key   string  `msgpack:"k"`
	Value []byte  `msgpack:"v,omitempty"`
	TTL   int64   `msgpack:"ttl,omitempty"`
	Flags uint64  `msgpack:"f,omitempty"`
	CAS   *uint64 `msgpack:"cas,omitempty"`
}

type mirrorBatchRequest struct {
	Ops []mirrorRequest `msgpack:"ops"`
	Ack string          `msgpack:"ack,omitempty"`
}

type mirrorResult struct {
	Code    uint16 `msgpack:"c"`
	Error   string `msgpack:"e,omitempty"`
	Value   []byte `msgpack:"v,omitempty"`
	Version uint64 `msgpack:"ver,omitempty"`
	Flags   uint64 `msgpack:"f,omitempty"`
	Expires int64  `msgpack:"x,omitempty"`
}

type mirrorBatchResponse struct {
	Results []mirrorResult `msgpack:"r"`
}

func toMirrorBatchRequest(x BatchRequest) mirrorBatchRequest {
	return mirrorBatchRequest{Ops: mpacktest.ConvertSlice(x.Ops, func(r Request) mirrorRequest { return mirrorRequest(r) }), Ack: x.Ack}
}

func fromMirrorBatchRequest(m mirrorBatchRequest) BatchRequest {
	return BatchRequest{Ops: mpacktest.ConvertSlice(m.Ops, func(r mirrorRequest) Request { return Request(r) }), Ack: m.Ack}
}

func toMirrorBatchResponse(x BatchResponse) mirrorBatchResponse {
	return mirrorBatchResponse{Results: mpacktest.ConvertSlice(x.Results, func(r Result) mirrorResult { return mirrorResult(r) })}
}

func fromMirrorBatchResponse(m mirrorBatchResponse) BatchResponse {
	return BatchResponse{Results: mpacktest.ConvertSlice(m.Results, func(r mirrorResult) Result { return Result(r) })}
}

// codec is this package's hand-written entry points, for mpacktest.
var codec = mpacktest.Codec{Marshal: Marshal, Unmarshal: Unmarshal}

func checkEncode[T, M any](t *testing.T, v T, mirror func(T) M, back func(M) T) {
	t.Helper()
	mpacktest.CheckEncode(t, codec, v, mirror, back)
}

func checkDecode[T, M any](t *testing.T, data []byte, back func(M) T) bool {
	t.Helper()
	return mpacktest.CheckDecode(t, codec, data, back)
}

// checkShared checks that a decoder sharing the payload's memory
// (UnmarshalSharedKeys, UnmarshalSharedValues) decodes data as Unmarshal
// does, or fails as it does.
func checkShared[T any](t *testing.T, data []byte, shared func(*T, []byte) error) {
	t.Helper()
	var want, got T
	wantErr := Unmarshal(bytes.Clone(data), &want)
	err := shared(&got, data)
	if (err == nil) != (wantErr == nil) || err == nil && !reflect.DeepEqual(got, want) {
		t.Errorf("shared decode: %+v, %v; Unmarshal %+v, %v", got, err, want, wantErr)
	}
}

func ptr[T any](v T) *T { return &v }

func TestBatchRequestEncodesAsReflection(t *testing.T) {
	ops := []Request{
		{},
		{Op: OpGet, Key: "k"},
		{Op: OpSet, Key: "k", Value: []byte("v"), TTL: 1500, Flags: 7, CAS: ptr(uint64(0))}, // CAS 0: only if absent
		{Op: OpSet, Key: "k", Value: []byte{}},                                              // empty value: omitted, as today
		{Op: OpDel, Key: "k", CAS: ptr(uint64(math.MaxUint64))},
		{Op: 255, Key: "\x00\xff binary \x80", TTL: math.MinInt64, Flags: math.MaxUint64},
		{Op: OpSet, Key: "", TTL: -1},
	}
	for _, n := range []int{31, 32, 255, 256, 65535, 65536} { // every str and bin header
		ops = append(ops, Request{Op: OpSet, Key: strings.Repeat("k", n), Value: bytes.Repeat([]byte{0xc1}, n)})
	}
	ops = append(ops, Request{Op: OpSet, Key: "big", Value: bytes.Repeat([]byte("v"), 1<<20)})
	cases := []BatchRequest{
		{},                            // nil ops: encoded as nil
		{Ops: []Request{}},            // empty ops: an empty array
		{Ops: ops[:1], Ack: AckAll},   // a zero op
		{Ops: ops, Ack: AckPrimary},   // every kind
		{Ops: make([]Request, 15)},    // fixarray
		{Ops: make([]Request, 16)},    // array 16
		{Ops: make([]Request, 65536)}, // array 32
	}
	for _, op := range ops {
		cases = append(cases, BatchRequest{Ops: []Request{op}})
	}
	for _, c := range cases {
		checkEncode(t, c, toMirrorBatchRequest, fromMirrorBatchRequest)
	}
}

func TestBatchResponseEncodesAsReflection(t *testing.T) {
	results := []Result{
		{},
		{Code: CodeOK, Value: []byte("v"), Version: 1 << 60, Flags: 3, Expires: 1700000000000},
		{Code: CodeOK, Value: []byte{}, Version: 1},
		{Code: CodeNotFound, Error: "no such key"},
		{Code: math.MaxUint16, Error: strings.Repeat("e", 300), Expires: -1},
		{Code: CodeOK, Value: bytes.Repeat([]byte{0}, 1<<20)},
	}
	cases := []BatchResponse{
		{},
		{Results: []Result{}},
		{Results: results},
		{Results: make([]Result, 16)},
	}
	for _, r := range results {
		cases = append(cases, BatchResponse{Results: []Result{r}})
	}
	for _, c := range cases {
		checkEncode(t, c, toMirrorBatchResponse, fromMirrorBatchResponse)
	}
}

type raw = mpacktest.Raw

func wireMap(t *testing.T, pairs ...any) raw { t.Helper(); return mpacktest.Map(t, pairs...) }

func array(elems ...raw) raw { return mpacktest.Array(elems...) }

func bin(s string) raw { return mpacktest.Bin(s) }

// TestBatchRequestDecodesAsReflection decodes payloads other clients may
// send, valid or not: both decoders agree on each.
func TestBatchRequestDecodesAsReflection(t *testing.T) {
	set := wireMap(t, "op", 2, "k", "k", "v", bin("v"))
	unknown := wireMap(t, "zz", map[string]any{"a": []any{1, 2.5, nil, true, "s", map[string]any{}}}, "ext", raw{0xd6, 1, 0, 0, 0, 0},
		"ext8", raw{0xc7, 3, 9, 1, 2, 3}, "f32", raw{0xca, 0, 0, 0, 0}, "big", raw{0xdd, 0, 0, 0, 1, 0xc0})
	cases := map[string]raw{
		"nil":                  {0xc0},
		"empty map":            wireMap(t),
		"empty array":          {0x90},
		"nil ops":              wireMap(t, "ops", nil),
		"empty ops":            wireMap(t, "ops", raw{0x90}),
		"one set":              wireMap(t, "ops", array(set), "ack", "all"),
		"fields in any order":  wireMap(t, "ops", array(wireMap(t, "cas", 0, "v", bin("v"), "f", 7, "ttl", 1, "k", "k", "op", 2))),
		"key as bin":           wireMap(t, "ops", array(wireMap(t, "op", 1, "k", bin("\x00\xffkey")))),
		"field names as bin":   wireMap(t, bin("ops"), array(wireMap(t, bin("op"), 1, bin("k"), "k")), bin("ack"), bin("all")),
		"value as str":         wireMap(t, "ops", array(wireMap(t, "op", 2, "k", "k", "v", "str value"))),
		"empty value":          wireMap(t, "ops", array(wireMap(t, "op", 2, "k", "k", "v", bin("")))),
		"nil fields":           wireMap(t, "ops", array(wireMap(t, "op", nil, "k", nil, "v", nil, "ttl", nil, "f", nil, "cas", nil)), "ack", nil),
		"cas 0":                wireMap(t, "ops", array(wireMap(t, "op", 3, "k", "k", "cas", 0))),
		"cas then nil":         wireMap(t, "ops", array(wireMap(t, "op", 3, "k", "k", "cas", 5, "cas", nil))),
		"nil then cas":         wireMap(t, "ops", array(wireMap(t, "cas", nil, "cas", 5))),
		"repeated fields":      wireMap(t, "ops", array(wireMap(t, "k", "a", "v", bin("long value"), "k", "b", "v", bin("x"))), "ack", "x", "ack", "all"),
		"repeated ops":         wireMap(t, "ops", array(set, set, set), "ops", array(wireMap(t, "k", "b")), "ops", array(set, set)),
		"repeated ops to nil":  wireMap(t, "ops", array(set), "ops", nil),
		"repeated ops emptied": wireMap(t, "ops", array(set), "ops", raw{0x90}),
		"unknown fields":       append(wireMap(t, "ops", array(wireMap(t, "op", 1, "k", "k", "zz", unknown)), "zz", unknown), 0),
		"nil name":             wireMap(t, raw{0xc0}, 1, "ops", array(set)),
		"nil op":               wireMap(t, "ops", array(raw{0xc0}, set)),
		"op as array":          wireMap(t, "ops", array(array(raw{2}, raw(mpack.AppendString(nil, "k")), bin("v"), raw{0xd0, 0xff}, raw{7}, raw{0xc0}))),
		"short op array":       wireMap(t, "ops", array(array(raw{2}, raw(mpack.AppendString(nil, "k"))))),
		"batch as array":       array(array(set), raw(mpack.AppendString(nil, "all"))),
		"map 16":               append(raw{0xde, 0, 1}, wireMap(t, "ops", array(set))[1:]...),
		"integer widths":       wireMap(t, "ops", array(wireMap(t, "op", raw{0xd3, 0, 0, 0, 0, 0, 0, 0, 2}, "ttl", raw{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "f", raw{0xd0, 0x80}, "cas", raw{0xff}))),
		"op over 255":          wireMap(t, "ops", array(wireMap(t, "op", 258, "k", "k"))),
		"trailing bytes":       append(wireMap(t, "ops", array(set)), 0xc1, 0xc1),
		"op as str":            wireMap(t, "ops", array(wireMap(t, "op", "set"))),
		"key as int":           wireMap(t, "ops", array(wireMap(t, "k", 5))),
		"value as bool":        wireMap(t, "ops", array(wireMap(t, "v", true))),
		"cas as str":           wireMap(t, "ops", array(wireMap(t, "cas", "1"))),
		"ttl as float":         wireMap(t, "ops", array(wireMap(t, "ttl", 1.5))),
		"ops as map":           wireMap(t, "ops", map[string]any{}),
		"ack as array":         wireMap(t, "ack", raw{0x90}),
		"name as int":          wireMap(t, raw{1}, 1),
		"not a map":            {0x05},
		"reserved code":        {0xc1},
		"empty":                {},
		"ext map":              append(raw{0xd4, 1}, wireMap(t)...),
		"huge array":           wireMap(t, "ops", raw{0xdd, 0xff, 0xff, 0xff, 0xff}),
		"huge value":           wireMap(t, "ops", array(wireMap(t, "v", raw{0xc6, 0x7f, 0xff, 0xff, 0xff}))),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			if name == "huge array" || name == "huge value" { // reflection would allocate gigabytes first
				var x BatchRequest
				if err := Unmarshal(data, &x); err == nil {
					t.Fatal("decoded a truncated payload")
				}
				return
			}
			checkDecode(t, data, fromMirrorBatchRequest)
			checkShared(t, data, (*BatchRequest).UnmarshalSharedKeys)
		})
	}
	// Every truncation of a valid payload fails on both sides.
	full := wireMap(t, "ops", array(set, wireMap(t, "op", 3, "k", bin("key"), "cas", raw{0xcf, 1, 2, 3, 4, 5, 6, 7, 8}, "zz", unknown)), "ack", "all")
	for n := range full {
		if checkDecode(t, full[:n], fromMirrorBatchRequest) {
			t.Fatalf("decoded %d bytes of %d", n, len(full))
		}
	}
}

func TestBatchResponseDecodesAsReflection(t *testing.T) {
	ok := wireMap(t, "c", 200, "v", bin("v"), "ver", 9, "f", 1, "x", -5)
	cases := map[string]raw{
		"nil":           {0xc0},
		"nil results":   wireMap(t, "r", nil),
		"empty":         wireMap(t, "r", raw{0x90}),
		"results":       wireMap(t, "r", array(ok, wireMap(t, "c", 404, "e", "no such key"), raw{0xc0})),
		"any order":     wireMap(t, "r", array(wireMap(t, "x", 1, "ver", raw{0xcd, 1, 0}, "c", raw{0xcc, 200}))),
		"unknown":       wireMap(t, "zz", array(ok), "r", array(wireMap(t, "c", 200, "zz", map[string]any{"a": 1}))),
		"as array":      array(array(array(raw{0xcc, 200}, raw(mpack.AppendString(nil, "e")), bin("v"), raw{1}, raw{2}, raw{3}))),
		"code too wide": wireMap(t, "r", array(wireMap(t, "c", 70000))),
		"code as str":   wireMap(t, "r", array(wireMap(t, "c", "200"))),
		"error as int":  wireMap(t, "r", array(wireMap(t, "e", 1))),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			checkDecode(t, data, fromMirrorBatchResponse)
			checkShared(t, data, (*BatchResponse).UnmarshalSharedValues)
		})
	}
	full := wireMap(t, "r", array(ok, ok))
	for n := range full {
		if checkDecode(t, full[:n], fromMirrorBatchResponse) {
			t.Fatalf("decoded %d bytes of %d", n, len(full))
		}
	}
}

// TestWireCodecFieldsMatchTags fails when a field is added to a wire type
// and not to its hand-written codec (and its mirror here).
func TestWireCodecFieldsMatchTags(t *testing.T) {
	for _, c := range []struct {
		typ, mirror any
		fields      []string
	}{
		{Request{}, mirrorRequest{}, requestFields},
		{BatchRequest{}, mirrorBatchRequest{}, batchRequestFields},
		{Result{}, mirrorResult{}, resultFields},
		{BatchResponse{}, mirrorBatchResponse{}, batchResponseFields},
	} {
		mpacktest.CheckFields(t, reflect.TypeOf(c.typ), reflect.TypeOf(c.mirror), c.fields)
	}
}

// FuzzRequestCodec encodes a batch of random operations by hand and by
// reflection, and decodes the bytes both ways.
func FuzzRequestCodec(f *testing.F) {
	f.Add(uint8(OpSet), "k", []byte("v"), int64(1500), uint64(7), uint64(0), true, AckAll, uint16(CodeOK), "")
	f.Add(uint8(OpGet), "\x00\xff", []byte(nil), int64(0), uint64(0), uint64(0), false, "", uint16(CodeNotFound), "no such key")
	f.Add(uint8(0), strings.Repeat("k", 40), bytes.Repeat([]byte{1}, 300), int64(-1), uint64(math.MaxUint64), uint64(1<<63), true, "x", uint16(0), "e")
	f.Fuzz(func(t *testing.T, op uint8, key string, value []byte, ttl int64, flags, cas uint64, hasCAS bool, ack string, code uint16, reason string) {
		r := Request{Op: Op(op), Key: key, Value: value, TTL: ttl, Flags: flags}
		if hasCAS {
			r.CAS = &cas
		}
		checkEncode(t, BatchRequest{Ops: []Request{r, {Op: OpGet, Key: key}, r}, Ack: ack}, toMirrorBatchRequest, fromMirrorBatchRequest)
		res := Result{Code: code, Error: reason, Value: value, Version: cas, Flags: flags, Expires: ttl}
		checkEncode(t, BatchResponse{Results: []Result{res, {Code: code}}}, toMirrorBatchResponse, fromMirrorBatchResponse)
	})
}

// FuzzBatchRequestDecode decodes random bytes by hand and by reflection,
// and re-encodes what decoded both ways.
func FuzzBatchRequestDecode(f *testing.F) {
	for _, c := range []BatchRequest{{}, {Ops: []Request{{Op: OpSet, Key: "k", Value: []byte("v"), TTL: 1, Flags: 2, CAS: ptr(uint64(3))}, {}}, Ack: AckAll}} {
		data, _ := Marshal(c)
		f.Add(data)
	}
	f.Add([]byte{0x81, 0xa3, 'o', 'p', 's', 0x91, 0x92, 0x02, 0xc4, 0x01, 'k'})
	f.Fuzz(func(t *testing.T, data []byte) {
		mpacktest.FuzzDecode(t, codec, data, fromMirrorBatchRequest, toMirrorBatchRequest)
	})
}

// FuzzBatchResponseDecode is FuzzBatchRequestDecode for replies.
func FuzzBatchResponseDecode(f *testing.F) {
	data, _ := Marshal(BatchResponse{Results: []Result{{Code: CodeOK, Value: []byte("v"), Version: 1, Flags: 2, Expires: 3}, {Code: CodeNotFound, Error: "e"}}})
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		mpacktest.FuzzDecode(t, codec, data, fromMirrorBatchResponse, toMirrorBatchResponse)
	})
}

// BenchmarkCodec compares the hand-written codec with what it replaced,
// msgpack's reflection (on the mirrors), for a batch of 32 sets as the Go
// client sends it and the reply to a batch of 32 gets, 100-byte values.
//
//	go test -run '^$' -bench 'Codec' -benchtime 1s -count 5 ./bus/ ./actors/replicator/
func BenchmarkCodec(b *testing.B) {
	value := bytes.Repeat([]byte("v"), 100)
	var req BatchRequest
	var resp BatchResponse
	for i := range 32 {
		req.Ops = append(req.Ops, Request{Op: OpSet, Key: "key" + strconv.Itoa(i*3001), Value: value})
		resp.Results = append(resp.Results, Result{Code: CodeOK, Value: value, Version: 1779000000000000 + uint64(i), Flags: 7})
	}
	mpacktest.Bench(b, codec, "BatchRequest-32", req, toMirrorBatchRequest)
	mpacktest.Bench(b, codec, "BatchResponse-32", resp, toMirrorBatchResponse)
}
