package bench

import (
	"bytes"
	"sync"
	"testing"

	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/bus"
	"github.com/vmihailenco/msgpack/v5"
)

// BenchmarkCodec compares the hand-written msgpack of the payloads on every
// request's path (bus.Marshal and bus.Unmarshal today) with what it
// replaced: msgpack's reflection, on mirror types with the same tags,
// called as bus.Marshal and bus.Unmarshal called it. The payloads: a batch
// of 32 sets as the Go client sends it, the reply to a batch of 32 gets,
// and a replication log message of 10 entries; keys and values as in the
// other benchmarks (benchKey, benchValueSize).
//
//	go test -run '^$' -bench 'Codec' -benchtime 1s -count 5 ./bench/
func BenchmarkCodec(b *testing.B) {
	value := bytes.Repeat([]byte("v"), benchValueSize)
	var req bus.BatchRequest
	var resp bus.BatchResponse
	for i := range 32 {
		req.Ops = append(req.Ops, bus.Request{Op: bus.OpSet, Key: benchKey(i * 3001), Value: value})
		resp.Results = append(resp.Results, bus.Result{Code: bus.CodeOK, Value: value, Version: 1779000000000000 + uint64(i), Flags: 7})
	}
	log := replicator.Batch{P: 17}
	for i := range 10 {
		log.Entries = append(log.Entries, replicator.Entry{P: 17, Term: 3, Seq: 1000 + uint64(i), Key: benchKey(i * 3001),
			Value: value, Version: 1779000000000000 + uint64(i), Created: 1779000000000000})
	}
	benchCodec(b, "BatchRequest-32", req, mirrorOfRequest(req))
	benchCodec(b, "BatchResponse-32", resp, mirrorOfResponse(resp))
	benchCodec(b, "ReplicationBatch-10", log, mirrorOfLog(log))
}

// benchCodec runs encode and decode of v by hand and of m, v's mirror, by
// reflection.
func benchCodec[T, M any](b *testing.B, name string, v T, m M) {
	data, err := bus.Marshal(&v)
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
			if _, err := bus.Marshal(&v); err != nil {
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
			if err := bus.Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// reflectionMarshal is bus.Marshal as it was: a pooled msgpack encoder,
// the result cloned out of its buffer.
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

// Mirrors of the payloads: the same fields and tags, no methods, so
// msgpack reflects over them.

type mirrorRequest struct {
	Op    bus.Op  `msgpack:"op"`
	Key   string  `msgpack:"k"`
	Value []byte  `msgpack:"v,omitempty"`
	TTL   int64   `msgpack:"ttl,omitempty"`
	Flags uint64  `msgpack:"f,omitempty"`
	CAS   *uint64 `msgpack:"cas,omitempty"`
}

type mirrorBatchRequest struct {
	Ops []mirrorRequest `msgpack:"ops"`
	Ack string          `msgpack:"ack,omitempty"`
}

type mirrorResult struct {
	Code    uint16 `msgpack:"c"`
	Error   string `msgpack:"e,omitempty"`
	Value   []byte `msgpack:"v,omitempty"`
	Version uint64 `msgpack:"ver,omitempty"`
	Flags   uint64 `msgpack:"f,omitempty"`
	Expires int64  `msgpack:"x,omitempty"`
}

type mirrorBatchResponse struct {
	Results []mirrorResult `msgpack:"r"`
}

type mirrorEntry struct {
	P       int    `msgpack:"p"`
	Term    uint64 `msgpack:"t"`
	Seq     uint64 `msgpack:"s"`
	Key     string `msgpack:"k"`
	Value   []byte `msgpack:"v,omitempty"`
	Version uint64 `msgpack:"ver"`
	Created uint64 `msgpack:"c,omitempty"`
	Flags   uint64 `msgpack:"f,omitempty"`
	Expires int64  `msgpack:"x,omitempty"`
	Deleted bool   `msgpack:"d,omitempty"`
}

type mirrorLogBatch struct {
	P       int           `msgpack:"p"`
	Entries []mirrorEntry `msgpack:"e"`
}

func mirrorOfRequest(x bus.BatchRequest) mirrorBatchRequest {
	m := mirrorBatchRequest{Ack: x.Ack}
	for _, op := range x.Ops {
		m.Ops = append(m.Ops, mirrorRequest(op))
	}
	return m
}

func mirrorOfResponse(x bus.BatchResponse) mirrorBatchResponse {
	var m mirrorBatchResponse
	for _, r := range x.Results {
		m.Results = append(m.Results, mirrorResult(r))
	}
	return m
}

func mirrorOfLog(x replicator.Batch) mirrorLogBatch {
	m := mirrorLogBatch{P: x.P}
	for _, e := range x.Entries {
		m.Entries = append(m.Entries, mirrorEntry(e))
	}
	return m
}
