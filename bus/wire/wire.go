package wire

// Payloads of the binary API, encoded with msgpack as maps with the short
// field names in the tags. docs/PROTOCOL.md documents each one for writers of
// clients in other languages; keep the two in step. Request, BatchRequest,
// Result and BatchResponse encode by hand (wire_codec.go), in the bytes
// msgpack would make of these tags: a field added here goes there too.

// Op is the kind of one operation in a batch.
type Op uint8

// The operations of the binary API.
const (
	OpGet Op = 1 // read a key
	OpSet Op = 2 // write a key
	OpDel Op = 3 // delete a key
	// OpIncr adds to a counter: Value is the delta as signed decimal text
	// (empty = 1), TTL applies when the counter is created; the Result's
	// Value is the new count as decimal text.
	OpIncr Op = 4
	// OpTouch resets a key's expiry to TTL (> 0) from now, keeping its
	// value and flags; the Result carries the new version and expiry.
	OpTouch Op = 5
)

// Status codes of a Result, and of whole-request errors in the
// Nats-Service-Error-Code header. They follow HTTP.
const (
	CodeOK           = 200 // success
	CodeBadRequest   = 400 // malformed or invalid input
	CodeUnauthorized = 403 // wrong or missing token (HTTP only; NATS refuses the connection)
	CodeNotFound     = 404 // no such key
	CodeConflict     = 409 // compare-and-swap mismatch
	CodeTooLarge     = 413 // key, value or batch over its limit
	CodeInternal     = 500 // a bug: please report it
	CodeUnavailable  = 503 // not ready, or the ack could not be met in time
)

// Ack modes of a write: when the node answers.
const (
	AckPrimary = "primary" // once the partition's primary applied the write (default)
	AckAll     = "all"     // once every live owner applied it
)

// Request is one operation of a BatchRequest.
type Request struct {
	Op    Op      `msgpack:"op"`            // OpGet, OpSet, OpDel, OpIncr or OpTouch
	Key   string  `msgpack:"k"`             // 1..MaxKey bytes, any bytes (str or bin on the wire)
	Value []byte  `msgpack:"v,omitempty"`   // OpSet: the value; OpIncr: the delta as signed decimal text, empty = 1
	TTL   int64   `msgpack:"ttl,omitempty"` // OpSet, OpIncr (on create): time to live in milliseconds, 0 = none; OpTouch, OpGet: the new TTL (> 0) from now, on a get a read-and-touch
	Flags uint64  `msgpack:"f,omitempty"`   // OpSet: opaque flags stored with the value
	CAS   *uint64 `msgpack:"cas,omitempty"` // OpSet, OpDel: expected version; 0 = only if absent; nil = unconditional
}

// BatchRequest is the payload of the Batch subject: operations applied in
// order, each independently (one failing does not stop the others).
type BatchRequest struct {
	Ops []Request `msgpack:"ops"`
	Ack string    `msgpack:"ack,omitempty"` // AckPrimary (default) or AckAll, for every write of the batch
}

// Result is the outcome of one Request, at the same index.
type Result struct {
	Code    uint16 `msgpack:"c"`           // CodeOK or an error code
	Error   string `msgpack:"e,omitempty"` // human-readable reason when Code != CodeOK
	Value   []byte `msgpack:"v,omitempty"` // OpGet: the value
	Version uint64 `msgpack:"ver,omitempty"`
	Flags   uint64 `msgpack:"f,omitempty"` // OpGet: the flags
	Expires int64  `msgpack:"x,omitempty"` // OpGet: absolute expiry in Unix milliseconds; 0 = never
}

// BatchResponse is the reply to a BatchRequest.
type BatchResponse struct {
	Results []Result `msgpack:"r"`
}

// ScanRequest asks for one page of the live keys that start with Prefix, in
// byte order, strictly after After.
type ScanRequest struct {
	Prefix   string `msgpack:"p"`
	After    string `msgpack:"a,omitempty"`  // resume after this key; "" = from the start
	Limit    int    `msgpack:"n,omitempty"`  // page size; 0 = server default, capped by the server
	KeysOnly bool   `msgpack:"ko,omitempty"` // omit values
}

// Entry is one key of a ScanResponse.
type Entry struct {
	Key     string `msgpack:"k"`
	Value   []byte `msgpack:"v,omitempty"`
	Version uint64 `msgpack:"ver"`
	Flags   uint64 `msgpack:"f,omitempty"`
	Expires int64  `msgpack:"x,omitempty"` // Unix milliseconds; 0 = never
}

// ScanResponse is one page of a scan. When More is set, ask again with After
// set to the last key of Entries.
type ScanResponse struct {
	Entries []Entry `msgpack:"e"`
	More    bool    `msgpack:"m,omitempty"`
}
