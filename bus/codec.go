package bus

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"
)

// Marshal encodes v with msgpack, as every binary payload of Roost is encoded.
func Marshal(v any) ([]byte, error) {
	enc := encoderPool.Get().(*pooledEncoder)
	defer encoderPool.Put(enc)
	enc.buf.Reset()
	if err := enc.enc.Encode(v); err != nil {
		return nil, fmt.Errorf("bus: encode %T: %w", v, err)
	}
	return bytes.Clone(enc.buf.Bytes()), nil
}

// Unmarshal decodes a msgpack payload into v. Unknown fields are skipped, so
// newer peers may add fields.
func Unmarshal(data []byte, v any) error {
	if err := msgpack.Unmarshal(data, v); err != nil {
		return fmt.Errorf("bus: decode %T: %w", v, err)
	}
	return nil
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
