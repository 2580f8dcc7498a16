// Package mpacktest checks hand-written msgpack codecs against msgpack's
// reflection, for the tests of the packages that have them (bus,
// actors/replicator): a type's codec must give the same bytes as a mirror
// type (the same fields and tags, no methods) encoded by reflection, and
// decode any bytes to the same value, or fail on both sides.
package mpacktest

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/roostkv/roost/internal/mpack"
	"github.com/vmihailenco/msgpack/v5"
)

// Codec is the package's own entry points, by hand: wire.Marshal and
// wire.Unmarshal (passed in, since bus's own tests cannot import bus).
type Codec struct {
	Marshal   func(v any) ([]byte, error)
	Unmarshal func(data []byte, v any) error
}

// ConvertSlice converts each element, keeping nil apart from empty.
func ConvertSlice[T, U any](s []T, f func(T) U) []U {
	if s == nil {
		return nil
	}
	out := make([]U, len(s))
	for i := range s {
		out[i] = f(s[i])
	}
	return out
}

// CheckEncode checks that v encodes to the same bytes by hand (c.Marshal,
// and msgpack through EncodeMsgpack) as its mirror by reflection, and that
// both decoders read them back the same.
func CheckEncode[T, M any](t testing.TB, c Codec, v T, mirror func(T) M, back func(M) T) {
	t.Helper()
	want, err := msgpack.Marshal(mirror(v))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Marshal(&v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Marshal(%T) %s", v, Diff(got, want))
	}
	if got, err := msgpack.Marshal(v); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("msgpack.Marshal(%T) through EncodeMsgpack: %v %s", v, err, Diff(got, want))
	}
	CheckDecode(t, c, want, back)
}

// Diff shows where got and want part, and a few bytes around.
func Diff(got, want []byte) string {
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	from := max(i-16, 0)
	return fmt.Sprintf("differs at byte %d of %d (want %d):\n got % x\nwant % x", i, len(got), len(want),
		got[from:min(i+16, len(got))], want[from:min(i+16, len(want))])
}

// CheckDecode checks that data decodes by hand (c.Unmarshal, and msgpack
// through DecodeMsgpack) as by reflection into the mirror: the same value,
// or an error on both sides. It reports whether data decoded.
func CheckDecode[T, M any](t testing.TB, c Codec, data []byte, back func(M) T) bool {
	t.Helper()
	var m M
	errReflect := msgpack.Unmarshal(data, &m)
	var got, viaMsgpack T
	errHand := c.Unmarshal(data, &got)
	errCustom := msgpack.Unmarshal(data, &viaMsgpack)
	if (errHand == nil) != (errReflect == nil) || (errCustom == nil) != (errReflect == nil) {
		t.Fatalf("decode % .64x: by hand %v, through DecodeMsgpack %v, by reflection %v", data, errHand, errCustom, errReflect)
	}
	if errReflect != nil {
		return false
	}
	if want := back(m); !reflect.DeepEqual(got, want) || !reflect.DeepEqual(viaMsgpack, want) {
		t.Fatalf("decode % .64x:\n          by hand %.300v\nvia DecodeMsgpack %.300v\n    by reflection %.300v", data, fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", viaMsgpack), fmt.Sprintf("%#v", want))
	}
	return true
}

// Raw is an already encoded msgpack value, for Map.
type Raw []byte

// Map builds a msgpack map of the pairs in order: a string key is a str, a
// Raw key is used as it is; a Raw value too, and any other value is encoded
// by msgpack.
func Map(t testing.TB, pairs ...any) Raw {
	t.Helper()
	b := mpack.AppendMapHeader(nil, len(pairs)/2)
	for _, p := range pairs {
		switch p := p.(type) {
		case Raw:
			b = append(b, p...)
		case string:
			b = mpack.AppendString(b, p)
		default:
			v, err := msgpack.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, v...)
		}
	}
	return b
}

// Array builds a msgpack array of encoded elements.
func Array(elems ...Raw) Raw {
	b := mpack.AppendArrayHeader(nil, len(elems))
	for _, e := range elems {
		b = append(b, e...)
	}
	return b
}

// Bin is s as msgpack bin.
func Bin(s string) Raw { return mpack.AppendBytes(nil, []byte(s)) }

// Names returns the msgpack names of t's fields, in order.
func Names(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("msgpack"), ",")
		names = append(names, name)
	}
	return names
}

// CheckFields fails t when typ's msgpack names are not fields, the names
// its hand-written codec knows, or when mirror's fields differ from typ's:
// a field added to a wire type and not to its codec (and its mirror).
func CheckFields(t testing.TB, typ, mirror reflect.Type, fields []string) {
	t.Helper()
	if got := Names(typ); !reflect.DeepEqual(got, fields) {
		t.Errorf("%s: tags %q, the codec knows %q", typ, got, fields)
	}
	if typ.NumField() != mirror.NumField() {
		t.Fatalf("%s has %d fields, its mirror %d", typ, typ.NumField(), mirror.NumField())
	}
	for i := range typ.NumField() {
		f, m := typ.Field(i), mirror.Field(i)
		if f.Name != m.Name || f.Tag != m.Tag || f.Type.Kind() != m.Type.Kind() {
			t.Errorf("%s.%s %s `%s`, mirror %s %s `%s`", typ, f.Name, f.Type, f.Tag, m.Name, m.Type, m.Tag)
		}
	}
}

// FuzzDecode checks random bytes: when they are one msgpack value whose
// lengths fit in them, they decode by hand as by reflection (CheckDecode)
// and what decoded re-encodes the same (CheckEncode); otherwise decoding by
// hand must fail (reflection might try to allocate gigabytes).
func FuzzDecode[T, M any](t *testing.T, c Codec, data []byte, back func(M) T, mirror func(T) M) {
	t.Helper()
	skipErr := mpack.NewReader(data).Skip()
	if errReflect := msgpack.NewDecoder(bytes.NewReader(data)).Skip(); (skipErr == nil) != (errReflect == nil) {
		t.Fatalf("skip % x: by hand %v, by reflection %v", data, skipErr, errReflect)
	}
	var v T
	if skipErr != nil {
		if err := c.Unmarshal(data, &v); err == nil {
			t.Fatalf("decoded a malformed payload % x", data)
		}
		return
	}
	if !CheckDecode(t, c, data, back) {
		return
	}
	if err := c.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	CheckEncode(t, c, v, mirror, back)
}

// Bench compares encoding and decoding v by hand (c) with its mirror by
// msgpack's reflection, called as wire.Marshal and wire.Unmarshal called it
// before the hand-written codecs, as sub-benchmarks of b named after name;
// it checks first that both give the same bytes.
func Bench[T, M any](b *testing.B, c Codec, name string, v T, mirror func(T) M) {
	m := mirror(v)
	data, err := c.Marshal(&v)
	if err != nil {
		b.Fatal(err)
	}
	if old, err := reflectionMarshal(&m); err != nil || !bytes.Equal(old, data) {
		b.Fatalf("%s: the codecs disagree (%v)", name, err)
	}
	b.Run(name+"/encode/reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := reflectionMarshal(&m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(name+"/encode/hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Marshal(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(name+"/decode/reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out M
			if err := msgpack.Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run(name+"/decode/hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out T
			if err := c.Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reflectionMarshal is wire.Marshal as it was: a pooled msgpack encoder, the
// result cloned out of its buffer.
func reflectionMarshal(v any) ([]byte, error) {
	enc := reflectionEncoders.Get().(*reflectionEncoder)
	defer reflectionEncoders.Put(enc)
	enc.buf.Reset()
	if err := enc.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.Clone(enc.buf.Bytes()), nil
}

type reflectionEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var reflectionEncoders = sync.Pool{New: func() any {
	e := &reflectionEncoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}
