package membership

import "time"

// Heartbeat is what every node publishes on Subjects.Heartbeat, msgpack
// encoded (wire.Marshal) as a map with these keys. Receivers skip unknown
// keys, so fields may be added.
type Heartbeat struct {
	ID          string            `msgpack:"id"`          // the sender's process ID
	Name        string            `msgpack:"name"`        // the sender's stable name
	Incarnation uint64            `msgpack:"incarnation"` // rises with each restart of Name
	Role        string            `msgpack:"role"`        // "server" or "proxy"
	Tags        map[string]string `msgpack:"tags"`        // free-form labels
	Addr        string            `msgpack:"addr"`        // NATS client URL
	HTTP        string            `msgpack:"http"`        // HTTP API address or ""
	Partitions  int               `msgpack:"partitions"`  // partition count P; peers with another P refuse each other
	Placement   string            `msgpack:"placement"`   // the sender's --placement-tag ("" = none); peers with another refuse each other
	KeyHash     string            `msgpack:"keyhash"`     // how the sender maps keys to partitions (partition.KeyHash); "" from nodes before it; peers with another refuse each other
	Datacenter  string            `msgpack:"dc"`          // the sender's --datacenter; "" from older nodes
	Build       string            `msgpack:"build"`       // the sender's Roost version; "" from older nodes
	Routes      bool              `msgpack:"routes"`      // the sender holds the routed text subjects of the partitions it leads; false from older nodes
	Leaving     bool              `msgpack:"leaving"`     // the sender leaves the cluster: mark it left at once
	Seq         uint64            `msgpack:"seq"`         // rises by one with each beat of this ID, from 1
	IntervalMS  int64             `msgpack:"interval_ms"` // the sender's beat period in ms; silence is measured in it
	Extra       []byte            `msgpack:"extra"`       // opaque (the replicator's last log IDs), nil when unset
}

// interval is the beat period the sender announces, or fallback when it
// announces none.
func (b *Heartbeat) interval(fallback time.Duration) time.Duration {
	if b.IntervalMS > 0 {
		return time.Duration(b.IntervalMS) * time.Millisecond
	}
	return fallback
}
