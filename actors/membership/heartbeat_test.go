package membership

import (
	"maps"
	"slices"
	"testing"

	"github.com/roostkv/roost/bus/wire"
)

func TestHeartbeatWire(t *testing.T) {
	b := Heartbeat{ID: "id", Name: "n", Incarnation: 1 << 40, Role: RoleProxy, Tags: map[string]string{"k": "v"},
		Addr: "nats://x:4222", HTTP: "x:7721", Partitions: 271, Placement: "zone", KeyHash: "h", Datacenter: "dc1", Build: "0.1.0", Routes: true, Leaving: true, Seq: 9, IntervalMS: 500, Extra: []byte{0, 1}}
	data, err := wire.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := wire.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	want := []string{"addr", "build", "dc", "extra", "http", "id", "incarnation", "interval_ms", "keyhash", "leaving", "name", "partitions", "placement", "role", "routes", "seq", "tags"}
	if got := slices.Sorted(maps.Keys(raw)); !slices.Equal(got, want) {
		t.Fatalf("wire keys %v, want %v", got, want)
	}
	var back Heartbeat
	if err := wire.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != b.ID || back.Incarnation != b.Incarnation || !maps.Equal(back.Tags, b.Tags) || back.Partitions != 271 ||
		!back.Leaving || back.Seq != 9 || back.IntervalMS != 500 || string(back.Extra) != "\x00\x01" || back.HTTP != b.HTTP ||
		back.Datacenter != "dc1" || back.Build != "0.1.0" || back.Placement != "zone" || back.KeyHash != "h" || !back.Routes {
		t.Fatalf("round trip: %+v", back)
	}
	// Unknown keys from a newer peer are skipped.
	raw["future"] = "x"
	data, err = wire.Marshal(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.Unmarshal(data, &back); err != nil {
		t.Fatalf("unknown key: %v", err)
	}
}
