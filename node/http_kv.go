package node

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/roostkv/roost/bus/wire"
)

// The consul KV API (docs/http.md), served as consul documents it so that
// consul clients work unchanged: /v1/kv/<key> with GET (?raw, ?recurse,
// ?keys, ?separator, blocking ?index and ?wait), PUT (?flags, ?cas, and
// Roost's ?ttl) and DELETE (?recurse, ?cas). A key's ModifyIndex is its
// version, CreateIndex the version that created it. Writes go through the
// node's routing like any other, so every node serves every key.

// kvPath is where the consul KV API's keys begin.
const kvPath = "/v1/kv/"

// kvRoutes registers the consul KV API; every route needs the token.
// /v1/kv without the slash is the empty key (the root), answered as is:
// the mux would otherwise redirect it to /v1/kv/.
func (n *Node) kvRoutes(mux *http.ServeMux) {
	for _, p := range []string{"/v1/kv", kvPath + "{key...}"} {
		mux.Handle("GET "+p, n.requireToken(http.HandlerFunc(n.httpKVGet)))
		mux.Handle("PUT "+p, n.requireToken(http.HandlerFunc(n.httpKVPut)))
		mux.Handle("DELETE "+p, n.requireToken(http.HandlerFunc(n.httpKVDelete)))
	}
}

// consulEntry is one key in consul's JSON shape. Value is base64, null when
// empty (consul stores an empty value as none).
type consulEntry struct {
	LockIndex   uint64
	Key         string
	Flags       uint64
	Value       []byte
	CreateIndex uint64
	ModifyIndex uint64
}

func (n *Node) httpKVGet(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	params := r.URL.Query()
	b, err := parseBlocking(params)
	if err != nil {
		httpError(w, err)
		return
	}
	_, recurse := params["recurse"]
	_, keys := params["keys"]
	q := kvQuery{key: key, prefix: recurse || keys, keysOnly: keys}
	if err := n.checkKVKey(key, q.prefix); err != nil {
		httpError(w, err)
		return
	}
	res, err := n.queryKV(r.Context(), q, b)
	if err != nil {
		if r.Context().Err() == nil {
			httpError(w, err)
		}
		return
	}
	h := w.Header()
	h.Set("X-Consul-Index", strconv.FormatUint(max(res.index, 1), 10)) // consul never answers 0: a client would not block on it
	h.Set("X-Consul-LastContact", "0")
	h.Set("X-Consul-KnownLeader", "true")
	_, raw := params["raw"]
	switch {
	case keys:
		list := collapseKeys(res.entries, key, separator(params))
		if len(list) == 0 && key != "" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		writeJSON(w, http.StatusOK, list)
	case len(res.entries) == 0:
		w.WriteHeader(http.StatusNotFound)
	case raw && !recurse:
		// The value as it is. text/plain with nosniff and a sandbox, as
		// consul sends it, so that a browser never runs a stored value.
		h.Set("Content-Type", "text/plain")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "sandbox")
		h.Set("Content-Length", strconv.Itoa(len(res.entries[0].Value)))
		_, _ = w.Write(res.entries[0].Value)
	default:
		out := make([]consulEntry, len(res.entries))
		for i, e := range res.entries {
			out[i] = consulEntry{Key: e.Key, Flags: e.Flags, CreateIndex: e.Created, ModifyIndex: e.Version}
			if len(e.Value) > 0 {
				out[i].Value = e.Value
			}
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (n *Node) httpKVPut(w http.ResponseWriter, r *http.Request) {
	op, err := n.putRequest(r)
	if err != nil {
		httpError(w, err)
		return
	}
	if op.Value, err = io.ReadAll(http.MaxBytesReader(w, r.Body, n.cfg.MaxValue)); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			httpError(w, errTooLarge("value is over the limit of %d bytes", n.cfg.MaxValue))
		} else {
			httpError(w, errBadRequest("reading the value: %v", err))
		}
		return
	}
	n.writeKV(w, op)
}

// putRequest checks a PUT's key and parameters and returns its set, without
// the value yet.
func (n *Node) putRequest(r *http.Request) (wire.Request, error) {
	op := wire.Request{Op: wire.OpSet, Key: r.PathValue("key")}
	params := r.URL.Query()
	if err := n.checkKey(op.Key); err != nil {
		return op, err
	}
	if err := unsupported(params, "acquire", "release"); err != nil {
		return op, err
	}
	var err error
	if op.CAS, err = queryCAS(params); err != nil {
		return op, err
	}
	if params.Has("flags") {
		if op.Flags, err = parseUint("flags", params.Get("flags")); err != nil {
			return op, err
		}
	}
	ttl, err := parseTTL(params.Get("ttl"))
	if err != nil {
		return op, err
	}
	op.TTL = ttlMillis(ttl)
	if r.ContentLength > n.cfg.MaxValue {
		return op, errTooLarge("value of %d bytes is over the limit of %d", r.ContentLength, n.cfg.MaxValue)
	}
	return op, nil
}

func (n *Node) httpKVDelete(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	params := r.URL.Query()
	if params.Has("recurse") {
		if params.Has("cas") {
			httpError(w, errBadRequest("conflicting parameters: ?recurse and ?cas do not go together"))
			return
		}
		if err := n.checkKVKey(key, true); err != nil {
			httpError(w, err)
			return
		}
		if err := n.deleteTree(r, key); err != nil {
			httpError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, true)
		return
	}
	op := wire.Request{Op: wire.OpDel, Key: key}
	err := n.checkKey(key)
	if err == nil {
		op.CAS, err = queryCAS(params)
	}
	if err != nil {
		httpError(w, err)
		return
	}
	n.writeKV(w, op)
}

// writeKV applies one write through the node's routing and answers as
// consul does: true, or false when a CAS did not hold.
func (n *Node) writeKV(w http.ResponseWriter, op wire.Request) {
	res := n.executeBatch([]wire.Request{op}, "")[0]
	switch res.Code {
	case wire.CodeOK:
		writeJSON(w, http.StatusOK, true)
	case wire.CodeConflict:
		writeJSON(w, http.StatusOK, false)
	default:
		http.Error(w, res.Error, int(res.Code))
	}
}

// deleteTree deletes every key under prefix, gathered from every node, in
// batches through the node's routing. Keys written meanwhile may survive:
// unlike consul's, it is not one atomic step.
func (n *Node) deleteTree(r *http.Request, prefix string) error {
	res, err := n.queryKV(r.Context(), kvQuery{key: prefix, prefix: true, keysOnly: true}, blocking{})
	if err != nil {
		return err
	}
	for chunk := range slices.Chunk(res.entries, maxBatchOps) {
		ops := make([]wire.Request, len(chunk))
		for i, e := range chunk {
			ops[i] = wire.Request{Op: wire.OpDel, Key: e.Key}
		}
		for _, res := range n.executeBatch(ops, "") {
			if res.Code != wire.CodeOK {
				return &apiError{code: int(res.Code), msg: res.Error}
			}
		}
	}
	return nil
}

// checkKVKey checks a key, or a prefix, which may be empty.
func (n *Node) checkKVKey(key string, prefix bool) error {
	if !prefix {
		return n.checkKey(key)
	}
	if len(key) > n.cfg.MaxKey {
		return errBadRequest("prefix of %d bytes is over the key limit of %d", len(key), n.cfg.MaxKey)
	}
	if reserved(key) {
		return errBadRequest("prefix %q begins with a NUL byte, which is reserved for Roost's own keys", key)
	}
	return nil
}

// queryCAS reads ?cas: absent = unconditional.
func queryCAS(params map[string][]string) (*uint64, error) {
	v, ok := params["cas"]
	if !ok {
		return nil, nil
	}
	cas, err := parseUint("cas", strings.Join(v, ""))
	if err != nil {
		return nil, err
	}
	return &cas, nil
}

// unsupported refuses consul parameters Roost does not serve.
func unsupported(params map[string][]string, names ...string) error {
	for _, name := range names {
		if _, ok := params[name]; ok {
			return errBadRequest("?%s is not supported: Roost has no consul sessions", name)
		}
	}
	return nil
}

// separator is ?separator, or consul's historic spelling ?seperator.
func separator(params map[string][]string) string {
	if v, ok := params["separator"]; ok {
		return strings.Join(v, "")
	}
	return strings.Join(params["seperator"], "")
}

// collapseKeys lists the keys of entries (sorted, all under prefix) as
// consul's ?keys does: with a separator, a key whose rest after the prefix
// holds it is cut just after its first occurrence, and duplicates go.
func collapseKeys(entries []kvEntry, prefix, sep string) []string {
	keys := make([]string, 0, len(entries))
	for _, e := range entries {
		k := e.Key
		if sep != "" {
			if i := strings.Index(k[len(prefix):], sep); i >= 0 {
				k = k[:len(prefix)+i+len(sep)]
			}
		}
		if len(keys) == 0 || keys[len(keys)-1] != k {
			keys = append(keys, k)
		}
	}
	return keys
}

// httpError answers err as plain text with its status code.
func httpError(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), codeOf(err))
}
