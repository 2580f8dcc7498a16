package node

// Payloads of the nodes' own KV subjects (wire.Subjects.NodeKV and
// NodeIndex), msgpack like the binary API. Only nodes speak them: they
// serve the consul KV API of whichever node a client asked.

// kvRequest asks one node for a key of a partition it leads, or for a page
// of its keys under a prefix (those of the partitions it leads).
type kvRequest struct {
	Key      string `msgpack:"k"`            // the key; with Prefix, the prefix ("" = every key)
	Prefix   bool   `msgpack:"p,omitempty"`  // read the keys under Key
	KeysOnly bool   `msgpack:"ko,omitempty"` // leave values out
	After    string `msgpack:"a,omitempty"`  // Prefix: the page starts after this key
	Observe  uint64 `msgpack:"o,omitempty"`  // first raise the node's version clock above this
}

// kvEntry is one key as the consul API shows it.
type kvEntry struct {
	Key     string `msgpack:"k"`
	Value   []byte `msgpack:"v,omitempty"`
	Version uint64 `msgpack:"ver"`         // ModifyIndex
	Created uint64 `msgpack:"c"`           // CreateIndex
	Flags   uint64 `msgpack:"f,omitempty"` // consul's flags
}

// kvResponse answers a kvRequest.
type kvResponse struct {
	Entries []kvEntry `msgpack:"e"`            // the key (none when absent), or the page in key order
	Index   uint64    `msgpack:"i,omitempty"`  // one key: its version, or its tombstone's (0 = none)
	More    bool      `msgpack:"m,omitempty"`  // Prefix: ask again after the last key
	LoadErr string    `msgpack:"le,omitempty"` // one key: its loader failed (a 503 not to retry)
}

// indexRequest asks one node for its index of a prefix: the highest version
// of the keys under it that it holds, tombstones included.
type indexRequest struct {
	Prefix  string `msgpack:"p"`
	Observe uint64 `msgpack:"o,omitempty"` // first raise the node's version clock above this
}

// indexResponse answers an indexRequest.
type indexResponse struct {
	Index uint64 `msgpack:"i"`
}
