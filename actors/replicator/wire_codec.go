package replicator

import (
	"github.com/roostkv/roost/internal/mpack"
	"github.com/vmihailenco/msgpack/v5"
)

// Hand-written msgpack for the replication log, published on every
// replicated write: byte for byte what msgpack's reflection makes of the
// tags in wire.go, and decoding what it decodes (see internal/mpack).
// wire.Marshal and wire.Unmarshal call AppendMsgpack and UnmarshalMsgpack
// directly; EncodeMsgpack and DecodeMsgpack serve msgpack itself, for the
// entries inside a Request or a Response. A field added to Entry or Batch
// must be added here and to the field list: TestWireCodecFieldsMatchTags
// checks.

// Field names, in declaration order: the order of an array-encoded struct.
var (
	entryFields = []string{"p", "t", "s", "k", "v", "ver", "c", "f", "x", "d"}
	batchFields = []string{"p", "e"}
)

// AppendMsgpack appends x as a msgpack map.
func (x Entry) AppendMsgpack(b []byte) []byte {
	n := 5 + count(len(x.Value) > 0) + count(x.Created != 0) + count(x.Flags != 0) + count(x.Expires != 0) + count(x.Deleted)
	b = mpack.AppendMapHeader(b, n)
	b = mpack.AppendInt(mpack.AppendString(b, "p"), int64(x.P))
	b = mpack.AppendUint64(mpack.AppendString(b, "t"), x.Term)
	b = mpack.AppendUint64(mpack.AppendString(b, "s"), x.Seq)
	b = mpack.AppendString(mpack.AppendString(b, "k"), x.Key)
	if len(x.Value) > 0 {
		b = mpack.AppendBytes(mpack.AppendString(b, "v"), x.Value)
	}
	b = mpack.AppendUint64(mpack.AppendString(b, "ver"), x.Version)
	if x.Created != 0 {
		b = mpack.AppendUint64(mpack.AppendString(b, "c"), x.Created)
	}
	if x.Flags != 0 {
		b = mpack.AppendUint64(mpack.AppendString(b, "f"), x.Flags)
	}
	if x.Expires != 0 {
		b = mpack.AppendInt64(mpack.AppendString(b, "x"), x.Expires)
	}
	if x.Deleted {
		b = mpack.AppendBool(mpack.AppendString(b, "d"), true)
	}
	return b
}

// UnmarshalMsgpack decodes data into x.
func (x *Entry) UnmarshalMsgpack(data []byte) error { return x.decode(mpack.NewReader(data), false) }

// decode reads an entry; with view its value shares r's data instead of
// being copied (decodeView).
func (x *Entry) decode(r *mpack.Reader, view bool) error {
	zero, err := r.Struct(entryFields, func(name []byte) (err error) {
		switch string(name) {
		case "p":
			var p int64
			p, err = r.Int64()
			x.P = int(p)
		case "t":
			x.Term, err = r.Uint64()
		case "s":
			x.Seq, err = r.Uint64()
		case "k":
			x.Key, err = r.String()
		case "v":
			if view {
				x.Value, err = r.BytesView()
			} else {
				x.Value, err = r.Bytes()
			}
		case "ver":
			x.Version, err = r.Uint64()
		case "c":
			x.Created, err = r.Uint64()
		case "f":
			x.Flags, err = r.Uint64()
		case "x":
			x.Expires, err = r.Int64()
		case "d":
			x.Deleted, err = r.Bool()
		default:
			err = r.Skip()
		}
		return err
	})
	if zero {
		*x = Entry{}
	}
	return err
}

// AppendMsgpack appends x as a msgpack map.
func (x Batch) AppendMsgpack(b []byte) []byte {
	b = mpack.AppendMapHeader(b, 2)
	b = mpack.AppendInt(mpack.AppendString(b, "p"), int64(x.P))
	b = mpack.AppendString(b, "e")
	if x.Entries == nil {
		return mpack.AppendNil(b)
	}
	b = mpack.AppendArrayHeader(b, len(x.Entries))
	for i := range x.Entries {
		b = x.Entries[i].AppendMsgpack(b)
	}
	return b
}

// UnmarshalMsgpack decodes data into x.
func (x *Batch) UnmarshalMsgpack(data []byte) error { return x.decode(data, false) }

// decodeView decodes data into x, the entries' values sharing data rather
// than copied out of it: for a batch a replica takes off the bus, whose
// message data nats.go allocates for it and nobody changes, and whose
// values the store copies when it applies them. It saves an allocation
// and a copy per entry.
func (x *Batch) decodeView(data []byte) error { return x.decode(data, true) }

func (x *Batch) decode(data []byte, view bool) error {
	r := mpack.NewReader(data)
	zero, err := r.Struct(batchFields, func(name []byte) (err error) {
		switch string(name) {
		case "p":
			var p int64
			p, err = r.Int64()
			x.P = int(p)
		case "e":
			x.Entries, err = mpack.ReadSlice(r, x.Entries, func(e *Entry) error { return e.decode(r, view) })
		default:
			err = r.Skip()
		}
		return err
	})
	if zero {
		*x = Batch{}
	}
	return err
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (x Entry) EncodeMsgpack(enc *msgpack.Encoder) error {
	return mpack.Encode(enc, x.AppendMsgpack)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (x *Entry) DecodeMsgpack(dec *msgpack.Decoder) error {
	return mpack.Decode(dec, x.UnmarshalMsgpack)
}

// EncodeMsgpack implements msgpack.CustomEncoder.
func (x Batch) EncodeMsgpack(enc *msgpack.Encoder) error {
	return mpack.Encode(enc, x.AppendMsgpack)
}

// DecodeMsgpack implements msgpack.CustomDecoder.
func (x *Batch) DecodeMsgpack(dec *msgpack.Decoder) error {
	return mpack.Decode(dec, x.UnmarshalMsgpack)
}

// count is 1 for true, 0 for false: a field that is not omitted.
func count(present bool) int {
	if present {
		return 1
	}
	return 0
}

// An ack set carries a replica's acks of one envelope (outbox.go): one
// message for every ack=all write of a client batch, decoded on the
// primary as it arrives; by hand for the same reason as the log.
var (
	ackFields    = []string{"p", "t", "s", "n"}
	ackSetFields = []string{"a"}
)

// AppendMsgpack appends x as a msgpack map.
func (x Ack) AppendMsgpack(b []byte) []byte {
	b = mpack.AppendMapHeader(b, 4)
	b = mpack.AppendInt(mpack.AppendString(b, "p"), int64(x.P))
	b = mpack.AppendUint64(mpack.AppendString(b, "t"), x.Term)
	b = mpack.AppendUint64(mpack.AppendString(b, "s"), x.Seq)
	return mpack.AppendString(mpack.AppendString(b, "n"), x.Node)
}

// UnmarshalMsgpack decodes data into x.
func (x *Ack) UnmarshalMsgpack(data []byte) error { return x.decode(mpack.NewReader(data)) }

func (x *Ack) decode(r *mpack.Reader) error {
	zero, err := r.Struct(ackFields, func(name []byte) (err error) {
		switch string(name) {
		case "p":
			var p int64
			p, err = r.Int64()
			x.P = int(p)
		case "t":
			x.Term, err = r.Uint64()
		case "s":
			x.Seq, err = r.Uint64()
		case "n":
			x.Node, err = r.String()
		default:
			err = r.Skip()
		}
		return err
	})
	if zero {
		*x = Ack{}
	}
	return err
}

// AppendMsgpack appends x as a msgpack map.
func (x ackSet) AppendMsgpack(b []byte) []byte {
	b = mpack.AppendString(mpack.AppendMapHeader(b, 1), "a")
	if x.Acks == nil {
		return mpack.AppendNil(b)
	}
	b = mpack.AppendArrayHeader(b, len(x.Acks))
	for i := range x.Acks {
		b = x.Acks[i].AppendMsgpack(b)
	}
	return b
}

// UnmarshalMsgpack decodes data into x.
func (x *ackSet) UnmarshalMsgpack(data []byte) error {
	r := mpack.NewReader(data)
	zero, err := r.Struct(ackSetFields, func(name []byte) (err error) {
		switch string(name) {
		case "a":
			x.Acks, err = mpack.ReadSlice(r, x.Acks, func(a *Ack) error { return a.decode(r) })
		default:
			err = r.Skip()
		}
		return err
	})
	if zero {
		*x = ackSet{}
	}
	return err
}
