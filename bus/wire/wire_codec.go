package wire

import (
	"fmt"

	"github.com/roostkv/roost/internal/mpack"
	"github.com/vmihailenco/msgpack/v5"
)

// Hand-written msgpack for the payloads of every batch: byte for byte what
// msgpack's reflection makes of the tags in wire.go, and decoding what it
// decodes (see internal/mpack), at a fraction of the CPU. Marshal and
// Unmarshal call AppendMsgpack and UnmarshalMsgpack directly;
// EncodeMsgpack and DecodeMsgpack serve msgpack itself, when one of these
// types is inside another value. A field added in wire.go must be added
// here, and to the field list: TestWireCodecFieldsMatchTags checks.

// Field names, in declaration order: the order of an array-encoded struct.
var (
	requestFields       = []string{"op", "k", "v", "ttl", "f", "cas"}
	batchRequestFields  = []string{"ops", "ack"}
	resultFields        = []string{"c", "e", "v", "ver", "f", "x"}
	batchResponseFields = []string{"r"}
)

// AppendMsgpack appends x as a msgpack map.
func (x Request) AppendMsgpack(b []byte) []byte {
	n := 2 + count(len(x.Value) > 0) + count(x.TTL != 0) + count(x.Flags != 0) + count(x.CAS != nil)
	b = mpack.AppendMapHeader(b, n)
	b = mpack.AppendUint8(mpack.AppendString(b, "op"), uint8(x.Op))
	b = mpack.AppendString(mpack.AppendString(b, "k"), x.Key)
	if len(x.Value) > 0 {
		b = mpack.AppendBytes(mpack.AppendString(b, "v"), x.Value)
	}
	if x.TTL != 0 {
		b = mpack.AppendInt64(mpack.AppendString(b, "ttl"), x.TTL)
	}
	if x.Flags != 0 {
		b = mpack.AppendUint64(mpack.AppendString(b, "f"), x.Flags)
	}
	if x.CAS != nil {
		b = mpack.AppendUint64(mpack.AppendString(b, "cas"), *x.CAS)
	}
	return b
}

// UnmarshalMsgpack decodes data into x.
func (x *Request) UnmarshalMsgpack(data []byte) error { return x.decode(mpack.NewReader(data), false) }

// decode reads x from r; with sharedKey, its key is a string over r's data
// instead of a copy.
func (x *Request) decode(r *mpack.Reader, sharedKey bool) error {
	zero, err := r.Struct(requestFields, func(name []byte) (err error) {
		switch string(name) {
		case "op":
			var op uint64
			op, err = r.Uint64()
			x.Op = Op(op)
		case "k":
			if sharedKey {
				x.Key, err = r.StringShared()
			} else {
				x.Key, err = r.String()
			}
		case "v":
			x.Value, err = r.Bytes()
		case "ttl":
			x.TTL, err = r.Int64()
		case "f":
			x.Flags, err = r.Uint64()
		case "cas":
			if r.Nil() {
				x.CAS = nil
				return nil
			}
			if x.CAS == nil {
				x.CAS = new(uint64)
			}
			*x.CAS, err = r.Uint64()
		default:
			err = r.Skip()
		}
		return err
	})
	if zero {
		*x = Request{}
	}
	return err
}

// AppendMsgpack appends x as a msgpack map.
func (x BatchRequest) AppendMsgpack(b []byte) []byte {
	b = mpack.AppendMapHeader(b, 1+count(x.Ack != ""))
	b = mpack.AppendString(b, "ops")
	if x.Ops == nil {
		b = mpack.AppendNil(b)
	} else {
		b = mpack.AppendArrayHeader(b, len(x.Ops))
		for i := range x.Ops {
			b = x.Ops[i].AppendMsgpack(b)
		}
	}
	if x.Ack != "" {
		b = mpack.AppendString(mpack.AppendString(b, "ack"), x.Ack)
	}
	return b
}

// UnmarshalMsgpack decodes data into x.
func (x *BatchRequest) UnmarshalMsgpack(data []byte) error { return x.unmarshal(data, false) }

// UnmarshalSharedKeys is UnmarshalMsgpack with the keys of the operations
// decoded as strings over data, not copies: one allocation fewer per
// operation. data must not change while a key is in use, and a key kept
// keeps all of data from the collector (strings.Clone it to keep it).
func (x *BatchRequest) UnmarshalSharedKeys(data []byte) error {
	if err := x.unmarshal(data, true); err != nil {
		return fmt.Errorf("bus: decode %T: %w", x, err)
	}
	return nil
}

func (x *BatchRequest) unmarshal(data []byte, sharedKeys bool) error {
	r := mpack.NewReader(data)
	zero, err := r.Struct(batchRequestFields, func(name []byte) (err error) {
		switch string(name) {
		case "ops":
			x.Ops, err = mpack.ReadSlice(r, x.Ops, func(op *Request) error { return op.decode(r, sharedKeys) })
		case "ack":
			x.Ack, err = r.String()
		default:
			err = r.Skip()
		}
		return err
	})
	if zero {
		*x = BatchRequest{}
	}
	return err
}

// AppendMsgpack appends x as a msgpack map.
func (x Result) AppendMsgpack(b []byte) []byte {
	n := 1 + count(x.Error != "") + count(len(x.Value) > 0) + count(x.Version != 0) + count(x.Flags != 0) + count(x.Expires != 0)
	b = mpack.AppendMapHeader(b, n)
	b = mpack.AppendUint16(mpack.AppendString(b, "c"), x.Code)
	if x.Error != "" {
		b = mpack.AppendString(mpack.AppendString(b, "e"), x.Error)
	}
	if len(x.Value) > 0 {
		b = mpack.AppendBytes(mpack.AppendString(b, "v"), x.Value)
	}
	if x.Version != 0 {
		b = mpack.AppendUint64(mpack.AppendString(b, "ver"), x.Version)
	}
	if x.Flags != 0 {
		b = mpack.AppendUint64(mpack.AppendString(b, "f"), x.Flags)
	}
	if x.Expires != 0 {
		b = mpack.AppendInt64(mpack.AppendString(b, "x"), x.Expires)
	}
	return b
}

// UnmarshalMsgpack decodes data into x.
func (x *Result) UnmarshalMsgpack(data []byte) error { return x.decode(mpack.NewReader(data), false) }

// decode reads x from r; with sharedValue, its value is a slice of r's
// data (mpack.Reader.BytesView) instead of a copy.
func (x *Result) decode(r *mpack.Reader, sharedValue bool) error {
	zero, err := r.Struct(resultFields, func(name []byte) (err error) {
		switch string(name) {
		case "c":
			var code uint64
			code, err = r.Uint64()
			x.Code = uint16(code)
		case "e":
			x.Error, err = r.String()
		case "v":
			if sharedValue {
				x.Value, err = r.BytesView()
			} else {
				x.Value, err = r.Bytes()
			}
		case "ver":
			x.Version, err = r.Uint64()
		case "f":
			x.Flags, err = r.Uint64()
		case "x":
			x.Expires, err = r.Int64()
		default:
			err = r.Skip()
		}
		return err
	})
	if zero {
		*x = Result{}
	}
	return err
}

// AppendMsgpack appends x as a msgpack map.
func (x BatchResponse) AppendMsgpack(b []byte) []byte {
	b = mpack.AppendString(mpack.AppendMapHeader(b, 1), "r")
	if x.Results == nil {
		return mpack.AppendNil(b)
	}
	b = mpack.AppendArrayHeader(b, len(x.Results))
	for i := range x.Results {
		b = x.Results[i].AppendMsgpack(b)
	}
	return b
}

// UnmarshalMsgpack decodes data into x.
func (x *BatchResponse) UnmarshalMsgpack(data []byte) error { return x.unmarshal(data, false) }

// UnmarshalSharedValues is UnmarshalMsgpack with the values of the results
// decoded as slices of data, not copies: one allocation fewer per value.
// Each value's capacity ends at its length, so that an append to one copies
// it rather than writing over the next; a value kept keeps all of data
// from the collector.
func (x *BatchResponse) UnmarshalSharedValues(data []byte) error {
	if err := x.unmarshal(data, true); err != nil {
		return fmt.Errorf("bus: decode %T: %w", x, err)
	}
	return nil
}

func (x *BatchResponse) unmarshal(data []byte, sharedValues bool) error {
	r := mpack.NewReader(data)
	zero, err := r.Struct(batchResponseFields, func(name []byte) (err error) {
		if string(name) != "r" {
			return r.Skip()
		}
		x.Results, err = mpack.ReadSlice(r, x.Results, func(res *Result) error { return res.decode(r, sharedValues) })
		return err
	})
	if zero {
		*x = BatchResponse{}
	}
	return err
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (x Request) EncodeMsgpack(enc *msgpack.Encoder) error {
	return mpack.Encode(enc, x.AppendMsgpack)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (x *Request) DecodeMsgpack(dec *msgpack.Decoder) error {
	return mpack.Decode(dec, x.UnmarshalMsgpack)
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (x BatchRequest) EncodeMsgpack(enc *msgpack.Encoder) error {
	return mpack.Encode(enc, x.AppendMsgpack)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (x *BatchRequest) DecodeMsgpack(dec *msgpack.Decoder) error {
	return mpack.Decode(dec, x.UnmarshalMsgpack)
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (x Result) EncodeMsgpack(enc *msgpack.Encoder) error {
	return mpack.Encode(enc, x.AppendMsgpack)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (x *Result) DecodeMsgpack(dec *msgpack.Decoder) error {
	return mpack.Decode(dec, x.UnmarshalMsgpack)
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (x BatchResponse) EncodeMsgpack(enc *msgpack.Encoder) error {
	return mpack.Encode(enc, x.AppendMsgpack)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (x *BatchResponse) DecodeMsgpack(dec *msgpack.Decoder) error {
	return mpack.Decode(dec, x.UnmarshalMsgpack)
}

// count is 1 for true, 0 for false: a field that is not omitted.
func count(present bool) int {
	if present {
		return 1
	}
	return 0
}
