package mpack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"
)

// Errors of decoding.
var (
	ErrShort       = errors.New("mpack: unexpected end of data")
	ErrInvalid     = errors.New("mpack: invalid code")
	ErrArrayStruct = errors.New("mpack: array-encoded struct with a different number of fields")
)

// A Reader decodes msgpack values one after the other from a byte slice.
// It never retains the slice beyond its own life: what it returns is
// copied, except the names passed to a Struct callback and what
// BytesView and StringShared return.
type Reader struct {
	data []byte
	off  int // next byte to read
}

// NewReader returns a Reader of data.
func NewReader(data []byte) *Reader { return &Reader{data: data} }

// Uint64 reads an integer of any width, or nil as 0, into a uint64 (a
// negative one wraps around, as the reflection decoder does).
func (r *Reader) Uint64() (uint64, error) {
	n, err := r.Int64()
	return uint64(n), err
}

// Int64 reads an integer of any width, or nil as 0, into an int64 (a uint
// 64 above the int64 range wraps around, as the reflection decoder does).
func (r *Reader) Int64() (int64, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	if c <= 0x7f || c >= 0xe0 { // positive or negative fixint
		return int64(int8(c)), nil
	}
	var w int // width of the integer after the code
	switch c {
	case 0xc0:
		return 0, nil
	case 0xcc, 0xd0:
		w = 1
	case 0xcd, 0xd1:
		w = 2
	case 0xce, 0xd2:
		w = 4
	case 0xcf, 0xd3:
		w = 8
	default:
		return 0, invalid(c, "an integer")
	}
	b, err := r.next(w)
	if err != nil {
		return 0, err
	}
	switch c {
	case 0xcc:
		return int64(b[0]), nil
	case 0xd0:
		return int64(int8(b[0])), nil
	case 0xcd:
		return int64(binary.BigEndian.Uint16(b)), nil
	case 0xd1:
		return int64(int16(binary.BigEndian.Uint16(b))), nil
	case 0xce:
		return int64(binary.BigEndian.Uint32(b)), nil
	case 0xd2:
		return int64(int32(binary.BigEndian.Uint32(b))), nil
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// Bool reads true or false, or nil as false.
func (r *Reader) Bool() (bool, error) {
	c, err := r.code()
	if err != nil {
		return false, err
	}
	switch c {
	case 0xc0, 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	}
	return false, invalid(c, "a bool")
}

// String reads a str or a bin, or nil as "".
func (r *Reader) String() (string, error) {
	b, err := r.raw()
	return string(b), err
}

// Bytes reads a bin or a str into a new slice, or nil as nil; an empty one
// is empty, not nil.
func (r *Reader) Bytes() ([]byte, error) {
	b, err := r.raw()
	if b == nil || err != nil {
		return nil, err
	}
	v := make([]byte, len(b))
	copy(v, b)
	return v, nil
}

// BytesView reads a bin or a str as Bytes does, but in place: the slice
// shares the reader's data (its capacity ends with the value), so it stays
// valid as long as that data is left unchanged.
func (r *Reader) BytesView() ([]byte, error) {
	b, err := r.raw()
	if b == nil || err != nil {
		return nil, err
	}
	return b[:len(b):len(b)], nil
}

// StringShared is String without the copy, as BytesView is Bytes without
// it: the string's bytes are the Reader's data, which must not change
// while the string is in use (and which it keeps from the collector).
func (r *Reader) StringShared() (string, error) {
	b, err := r.raw()
	if len(b) == 0 || err != nil {
		return "", err
	}
	return unsafe.String(&b[0], len(b)), nil
}

// ArrayLen reads an array's header: its length, or -1 for nil.
func (r *Reader) ArrayLen() (int, error) {
	c, err := r.code()
	if err != nil {
		return 0, err
	}
	n, err := r.arrayLen(c)
	if err == nil && n > len(r.data)-r.off { // each element takes a byte at least
		return 0, fmt.Errorf("%w: array of %d elements in %d bytes", ErrShort, n, len(r.data)-r.off)
	}
	return n, err
}

// Nil reads a nil and reports true, if nil is next; otherwise it reads
// nothing and reports false.
func (r *Reader) Nil() bool {
	if r.off < len(r.data) && r.data[r.off] == 0xc0 {
		r.off++
		return true
	}
	return false
}

// Struct reads a struct as the reflection decoder does. From a map, it
// calls field with each key (a str, a bin, or nil as ""), which must read
// the value that follows, or Skip it when it does not know the name; name
// is only valid during the call. From an array of as many elements as
// names, it calls field with each of names in turn. From nil or an empty
// array, it calls nothing and reports zero: the struct takes its zero
// value.
func (r *Reader) Struct(names []string, field func(name []byte) error) (zero bool, err error) {
	c, err := r.code()
	if err != nil {
		return false, err
	}
	n, err := r.mapLen(c)
	if err == nil {
		if n < 0 {
			return true, nil
		}
		for range n {
			name, err := r.raw()
			if err != nil {
				return false, err
			}
			if err := field(name); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	n, err2 := r.arrayLen(c)
	switch {
	case err2 != nil:
		return false, err
	case n == 0:
		return true, nil
	case n != len(names):
		return false, ErrArrayStruct
	}
	for _, name := range names {
		if err := field([]byte(name)); err != nil {
			return false, err
		}
	}
	return false, nil
}

// ReadSlice reads an array into s as the reflection decoder reads into a
// slice field holding s, reading each element with elem: nil gives nil, an
// empty array an empty slice, and otherwise s's elements are reused, as
// far as its capacity goes, and the others appended as zero values.
func ReadSlice[T any](r *Reader, s []T, elem func(e *T) error) ([]T, error) {
	n, err := r.ArrayLen()
	switch {
	case err != nil:
		return s, err
	case n < 0:
		return nil, nil
	case n == 0 && s == nil:
		return []T{}, nil
	case cap(s) >= n:
		s = s[:n]
	default:
		s = append(s[:cap(s)], make([]T, n-cap(s))...)
	}
	for i := range s {
		if err := elem(&s[i]); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Skip reads the next value, of any type, and drops it.
func (r *Reader) Skip() error {
	for left := 1; left > 0; left-- { // values still to read
		c, err := r.code()
		if err != nil {
			return err
		}
		var n int // bytes to skip after the code and any length
		switch {
		case c <= 0x7f || c >= 0xe0: // fixint
		case c <= 0x8f: // fixmap
			left += 2 * int(c&0x0f)
		case c <= 0x9f: // fixarray
			left += int(c & 0x0f)
		case c <= 0xbf: // fixstr
			n = int(c & 0x1f)
		default:
			var values int
			n, values, err = r.skipHeader(c)
			left += values
		}
		if err == nil {
			_, err = r.next(n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// skipHeader reads the rest of the header of a value whose code is c, one
// of the formats beyond the fixed ones, and returns how many bytes of the
// value follow it and how many values (of an array or a map) follow those.
func (r *Reader) skipHeader(c byte) (n, values int, err error) {
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
	case 0xcc, 0xd0:
		n = 1
	case 0xcd, 0xd1:
		n = 2
	case 0xce, 0xd2, 0xca: // and float 32
		n = 4
	case 0xcf, 0xd3, 0xcb: // and float 64
		n = 8
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16, after a type byte
		n = 1<<(c-0xd4) + 1
	case 0xc4, 0xd9: // bin 8, str 8
		n, err = r.length(1)
	case 0xc5, 0xda:
		n, err = r.length(2)
	case 0xc6, 0xdb:
		n, err = r.length(4)
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32, and a type byte
		n, err = r.length(1 << (c - 0xc7))
		n++
	case 0xdc, 0xdd: // array 16, 32
		n, err = r.length(2 << (c - 0xdc))
		return 0, n, err
	case 0xde, 0xdf: // map 16, 32
		n, err = r.length(2 << (c - 0xde))
		return 0, 2 * n, err
	default:
		return 0, 0, invalid(c, "any value")
	}
	return n, 0, err
}

// code reads the next code.
func (r *Reader) code() (byte, error) {
	if r.off >= len(r.data) {
		return 0, ErrShort
	}
	c := r.data[r.off]
	r.off++
	return c, nil
}

// next returns the next n bytes, in place.
func (r *Reader) next(n int) ([]byte, error) {
	if n > len(r.data)-r.off {
		return nil, ErrShort
	}
	b := r.data[r.off : r.off+n : r.off+n]
	r.off += n
	return b, nil
}

// length reads a big-endian unsigned length of w bytes (1, 2 or 4).
func (r *Reader) length(w int) (int, error) {
	b, err := r.next(w)
	if err != nil {
		return 0, err
	}
	switch w {
	case 1:
		return int(b[0]), nil
	case 2:
		return int(binary.BigEndian.Uint16(b)), nil
	}
	return int(binary.BigEndian.Uint32(b)), nil
}

// raw reads a str or a bin in place, nil for nil.
func (r *Reader) raw() ([]byte, error) {
	c, err := r.code()
	if err != nil {
		return nil, err
	}
	var n int
	switch {
	case c >= 0xa0 && c <= 0xbf: // fixstr
		n = int(c & 0x1f)
	case c == 0xc0:
		return nil, nil
	case c == 0xc4 || c == 0xd9: // bin 8, str 8
		n, err = r.length(1)
	case c == 0xc5 || c == 0xda:
		n, err = r.length(2)
	case c == 0xc6 || c == 0xdb:
		n, err = r.length(4)
	default:
		return nil, invalid(c, "a str or bin")
	}
	if err != nil {
		return nil, err
	}
	return r.next(n)
}

// mapLen returns the length of the map whose code is c, -1 for nil.
func (r *Reader) mapLen(c byte) (int, error) {
	switch {
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), nil
	case c == 0xc0:
		return -1, nil
	case c == 0xde:
		return r.length(2)
	case c == 0xdf:
		return r.length(4)
	}
	return 0, invalid(c, "a map")
}

// arrayLen returns the length of the array whose code is c, -1 for nil.
func (r *Reader) arrayLen(c byte) (int, error) {
	switch {
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), nil
	case c == 0xc0:
		return -1, nil
	case c == 0xdc:
		return r.length(2)
	case c == 0xdd:
		return r.length(4)
	}
	return 0, invalid(c, "an array")
}

func invalid(c byte, want string) error {
	return fmt.Errorf("%w %#x reading %s", ErrInvalid, c, want)
}
