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
	"testing"

	"github.com/roostkv/roost/internal/mpack"
	"github.com/vmihailenco/msgpack/v5"
)

// Codec is the package's own entry points, by hand: bus.Marshal and
// bus.Unmarshal (passed in, since bus's own tests cannot import bus).
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
