package client

import (
	"reflect"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
)

// TestDecodeBatchIntoReused checks that results decoded into a sender's
// reused slice carry nothing over from the batch before: wire's decoder
// leaves absent fields as they are.
func TestDecodeBatchIntoReused(t *testing.T) {
	old := []wire.Result{
		{Code: wire.CodeOK, Value: []byte("old value"), Version: 9, Flags: 3, Expires: 12345},
		{Code: wire.CodeNotFound, Error: "key \"x\" not found"},
	}
	want := []wire.Result{{Code: wire.CodeNotFound, Error: "gone"}, {Code: wire.CodeOK, Version: 2}}
	data, err := wire.Marshal(&wire.BatchResponse{Results: want})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBatch(&nats.Msg{Data: data}, nil, "roost.bin.batch", 2, old)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
}
