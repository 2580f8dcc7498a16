package mpack

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// encoded returns what msgpack's encoder, without options, writes with fn.
func encoded(t *testing.T, fn func(e *msgpack.Encoder) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := fn(msgpack.NewEncoder(&buf)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	ints = []int64{0, 1, 31, 32, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64}
	lengths = []int{0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536}
)

func TestAppendWritesAsMsgpack(t *testing.T) {
	check := func(what string, got []byte, fn func(e *msgpack.Encoder) error) {
		t.Helper()
		if want := encoded(t, fn); !bytes.Equal(got, want) {
			t.Errorf("%s: % .16x, msgpack % .16x", what, got, want)
		}
	}
	for _, n := range ints {
		check("int", AppendInt(nil, n), func(e *msgpack.Encoder) error { return e.Encode(int(n)) })
		check("int64", AppendInt64(nil, n), func(e *msgpack.Encoder) error { return e.Encode(n) })
		check("uint64", AppendUint64(nil, uint64(n)), func(e *msgpack.Encoder) error { return e.Encode(uint64(n)) })
		check("uint16", AppendUint16(nil, uint16(n)), func(e *msgpack.Encoder) error { return e.Encode(uint16(n)) })
		check("uint8", AppendUint8(nil, uint8(n)), func(e *msgpack.Encoder) error { return e.Encode(uint8(n)) })
	}
	for _, n := range lengths {
		s := strings.Repeat("s", n)
		check("string", AppendString(nil, s), func(e *msgpack.Encoder) error { return e.Encode(s) })
		check("bytes", AppendBytes(nil, []byte(s)), func(e *msgpack.Encoder) error { return e.Encode([]byte(s)) })
		check("map", AppendMapHeader(nil, n), func(e *msgpack.Encoder) error { return e.EncodeMapLen(n) })
		check("array", AppendArrayHeader(nil, n), func(e *msgpack.Encoder) error { return e.EncodeArrayLen(n) })
	}
	check("nil bytes", AppendBytes(nil, nil), func(e *msgpack.Encoder) error { return e.Encode([]byte(nil)) })
	check("true", AppendBool(nil, true), func(e *msgpack.Encoder) error { return e.Encode(true) })
	check("false", AppendBool(nil, false), func(e *msgpack.Encoder) error { return e.Encode(false) })
}

func TestReadsAsMsgpack(t *testing.T) {
	var values [][]byte // every integer format, both string formats, nil, bools
	for _, n := range ints {
		values = append(values, AppendInt(nil, n), AppendInt64(nil, n), AppendUint64(nil, uint64(n)), AppendUint16(nil, uint16(n)))
	}
	for _, n := range lengths {
		values = append(values, AppendString(nil, strings.Repeat("s", n)), AppendBytes(nil, bytes.Repeat([]byte{0xc1}, n)))
	}
	values = append(values, []byte{0xc0}, []byte{0xc2}, []byte{0xc3}, []byte{0xca, 0, 0, 0, 0}, []byte{0x90}, []byte{0x80})
	same := func(data []byte, what string, got any, err error, want any, wantErr error) {
		t.Helper()
		if (err == nil) != (wantErr == nil) || err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("% .16x as %s: %#v, %v; msgpack %#v, %v", data, what, got, err, want, wantErr)
		}
	}
	for _, data := range values {
		dec := func() *msgpack.Decoder { return msgpack.NewDecoder(bytes.NewReader(data)) }
		i, err := NewReader(data).Int64()
		wantI, wantErr := dec().DecodeInt64()
		same(data, "int64", i, err, wantI, wantErr)
		u, err := NewReader(data).Uint64()
		wantU, wantErr := dec().DecodeUint64()
		same(data, "uint64", u, err, wantU, wantErr)
		b, err := NewReader(data).Bool()
		wantB, wantErr := dec().DecodeBool()
		same(data, "bool", b, err, wantB, wantErr)
		s, err := NewReader(data).String()
		wantS, wantErr := dec().DecodeString()
		same(data, "string", s, err, wantS, wantErr)
		var v, wantV []byte
		v, err = NewReader(data).Bytes()
		wantErr = dec().Decode(&wantV)
		same(data, "bytes", v, err, wantV, wantErr)
		v, err = NewReader(data).BytesView()
		same(data, "shared bytes", v, err, wantV, wantErr)
		s, err = NewReader(data).StringShared()
		same(data, "shared string", s, err, wantS, wantErr)
	}
}

// TestBytesView: a shared value is the data's own bytes, and an append to
// it does not write over the value after it.
func TestBytesView(t *testing.T) {
	data := AppendBytes(AppendBytes(nil, []byte("ab")), []byte("cd"))
	r := NewReader(data)
	first, err := r.BytesView()
	if err != nil {
		t.Fatal(err)
	}
	first[0] = 'A'
	if data[2] != 'A' {
		t.Fatalf("BytesView copied: data % x", data)
	}
	_ = append(first, 'X', 'Y')
	if second, err := r.BytesView(); err != nil || string(second) != "cd" {
		t.Fatalf("after an append to the first value, the second reads %q, %v", second, err)
	}
}

func TestSkip(t *testing.T) {
	nested := map[string]any{"a": []any{1, -1.5, nil, true, "s", []byte("b"), map[string]any{"c": uint64(math.MaxUint64)}}, "d": strings.Repeat("x", 300)}
	data, err := msgpack.Marshal(nested)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, 0x91, 0xd6, 1, 0, 0, 0, 0) // and an array of one fixext 4
	r := NewReader(data)
	if err := r.Skip(); err != nil || r.Skip() != nil || r.off != len(data) {
		t.Fatalf("skip: %v, at %d of %d", err, r.off, len(data))
	}
	for n := range data[:len(data)-7] {
		if err := NewReader(data[:n]).Skip(); err == nil {
			t.Fatalf("skipped %d bytes of %d", n, len(data))
		}
	}
	if err := NewReader([]byte{0xc1}).Skip(); err == nil {
		t.Fatal("skipped 0xc1, which msgpack reserves")
	}
}
