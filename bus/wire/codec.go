package wire

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/roostkv/roost/internal/mpack"
	"github.com/vmihailenco/msgpack/v5"
)

// Marshal encodes v with msgpack, as every binary payload of Roost is encoded.
// The payloads on every request's path (BatchRequest, BatchResponse, the
// replication log) encode themselves by hand (AppendMsgpack), in the same
// bytes; the others go through msgpack's reflection.
func Marshal(v any) ([]byte, error) {
	if a, ok := v.(appender); ok {
		return mpack.Marshal(a.AppendMsgpack), nil
	}
	enc := encoderPool.Get().(*pooledEncoder)
	defer encoderPool.Put(enc)
	enc.buf.Reset()
	if err := enc.enc.Encode(v); err != nil {
		return nil, fmt.Errorf("bus: encode %T: %w", v, err)
	}
	return bytes.Clone(enc.buf.Bytes()), nil
}

// Unmarshal decodes a msgpack payload into v. Unknown fields are skipped, so
// newer peers may add fields. Types that decode themselves by hand
// (msgpack.Unmarshaler) do so directly.
func Unmarshal(data []byte, v any) error {
	var err error
	if u, ok := v.(msgpack.Unmarshaler); ok {
		err = u.UnmarshalMsgpack(data)
	} else {
		err = msgpack.Unmarshal(data, v)
	}
	if err != nil {
		return fmt.Errorf("bus: decode %T: %w", v, err)
	}
	return nil
}

// An appender encodes itself as msgpack onto b, by hand.
type appender interface {
	AppendMsgpack(b []byte) []byte
}

type pooledEncoder struct {
	buf bytes.Buffer
	enc *msgpack.Encoder
}

var encoderPool = sync.Pool{New: func() any {
	e := &pooledEncoder{}
	e.enc = msgpack.NewEncoder(&e.buf)
	return e
}}
