// Package mpack encodes and decodes msgpack by hand, for the payloads that
// are on every request's path (wire.BatchRequest, wire.BatchResponse, the
// replication log's batches): byte for byte what the reflection codec of
// github.com/vmihailenco/msgpack/v5 writes and accepts, at a fraction of its
// cost.
//
// Encoding appends to a byte slice, in the formats that codec's encoder
// uses without options: strings and binaries in the smallest header, maps
// and arrays likewise, integers of Go's sized types in their full width
// (a uint64 is always 0xcf and 8 bytes) and of Go's int in the smallest.
//
//	b = mpack.AppendMapHeader(b, 2)
//	b = mpack.AppendString(b, "k")
//	b = mpack.AppendString(b, key)
//	b = mpack.AppendString(b, "ver")
//	b = mpack.AppendUint64(b, version)
//
// Decoding reads a Reader as that codec's decoder reads into a struct: a
// map of field names (str, bin or nil) to values, in any order, unknown
// names skipped; any integer width into any integer field; nil as the zero
// value. Lengths are checked against the data before anything is
// allocated.
//
//	r := mpack.NewReader(data)
//	zero, err := r.Struct(names, func(name []byte) error {
//		switch string(name) {
//		case "k":
//			key, err = r.String()
//			return err
//		}
//		return r.Skip()
//	})
package mpack
