package replicator

import (
	"errors"
	"fmt"

	"github.com/roostkv/roost/bus/wire"
)

// A replication message between nodes travels as one byte naming its type,
// then its msgpack encoding.
const (
	tagFetchRequest byte = iota + 1
	tagFetchResponse
	tagSnapshotRequest
	tagSnapshotResponse
	tagPushRequest
	tagPushResponse
	tagAck
	tagDigestRequest
	tagAcks  // a replica's acks of one drain (outbox.go); decoded by decodeAcks
	tagEvict // evictions (evict.go)
)

var errMalformed = errors.New("replicator: malformed replication message")

// encode makes the bytes of a wire message.
func encode(m any) ([]byte, error) {
	var tag byte
	switch m.(type) {
	case FetchRequest:
		tag = tagFetchRequest
	case FetchResponse:
		tag = tagFetchResponse
	case SnapshotRequest:
		tag = tagSnapshotRequest
	case SnapshotResponse:
		tag = tagSnapshotResponse
	case PushRequest:
		tag = tagPushRequest
	case PushResponse:
		tag = tagPushResponse
	case Ack:
		tag = tagAck
	case DigestRequest:
		tag = tagDigestRequest
	case Evict:
		tag = tagEvict
	default:
		return nil, fmt.Errorf("replicator: %T is not a wire message", m)
	}
	body, err := wire.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append([]byte{tag}, body...), nil
}

// decode reads a message encode made, and the partition it is about (-1
// for a DigestRequest, which is about many).
func decode(data []byte) (Message, any, int, error) {
	if len(data) < 2 {
		return nil, nil, 0, errMalformed
	}
	body := data[1:]
	var err error
	switch data[0] {
	case tagFetchRequest:
		var m FetchRequest
		err = wire.Unmarshal(body, &m)
		return m, nil, m.P, err
	case tagFetchResponse:
		var m FetchResponse
		err = wire.Unmarshal(body, &m)
		return m, nil, m.P, err
	case tagSnapshotRequest:
		var m SnapshotRequest
		err = wire.Unmarshal(body, &m)
		return m, nil, m.P, err
	case tagSnapshotResponse:
		var m SnapshotResponse
		err = wire.Unmarshal(body, &m)
		return m, nil, m.P, err
	case tagPushRequest:
		var m PushRequest
		err = wire.Unmarshal(body, &m)
		return m, nil, m.P, err
	case tagPushResponse:
		var m PushResponse
		err = wire.Unmarshal(body, &m)
		return m, nil, m.P, err
	case tagAck:
		var m Ack
		err = wire.Unmarshal(body, &m)
		return m, nil, m.P, err
	case tagDigestRequest:
		var m DigestRequest
		err = wire.Unmarshal(body, &m)
		return nil, m, -1, err
	case tagEvict:
		var m Evict
		err = wire.Unmarshal(body, &m)
		return m, nil, m.P, err
	}
	return nil, nil, 0, errMalformed
}
