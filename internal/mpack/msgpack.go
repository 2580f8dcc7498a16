package mpack

import (
	"bytes"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Marshal returns what appendTo appends, in a slice of its own: appendTo
// works in a pooled buffer, so the result is allocated once, at its size
// (a message too large for the pool is returned in the buffer it grew).
func Marshal(appendTo func(b []byte) []byte) []byte {
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	b := appendTo((*buf)[:0])
	if cap(b) > maxPooled {
		return b // *buf is left as it was, small
	}
	*buf = b
	return bytes.Clone(b)
}

// Encode writes what appendTo appends onto enc's output: how a type with a
// hand-written appender implements msgpack.CustomEncoder, for when it is
// encoded inside another value.
func Encode(enc *msgpack.Encoder, appendTo func(b []byte) []byte) error {
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	b := appendTo((*buf)[:0])
	if cap(b) <= maxPooled {
		*buf = b
	}
	_, err := enc.Writer().Write(b)
	return err
}

// Decode reads the next value of dec whole and passes it to unmarshal: how
// a type with a hand-written decoder implements msgpack.CustomDecoder, for
// when it is decoded inside another value.
func Decode(dec *msgpack.Decoder, unmarshal func(data []byte) error) error {
	raw, err := dec.DecodeRaw()
	if err != nil {
		return err
	}
	return unmarshal(raw)
}

// maxPooled is the largest buffer kept for reuse, in bytes: larger
// messages (big values) allocate their own rather than pin memory.
const maxPooled = 64 << 10

// bufPool holds buffers of at most maxPooled bytes.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}
