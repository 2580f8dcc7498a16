package node

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/roostkv/roost/actors/store"
	"github.com/vmihailenco/msgpack/v5"
)

// Warm restart (--data-dir): a graceful Stop writes the whole store to one
// snapshot file, and the next Start loads it before the node meets its
// peers; replication then merges it with newer data by version. The file
// format and the guarantees are in docs/warm-restart.md.

// Names and format of the snapshot file.
const (
	snapshotName    = "roost.snapshot"     // in the data dir
	snapshotBadName = "roost.snapshot.bad" // where an unreadable snapshot is moved aside
	snapshotTemp    = "roost.snapshot.tmp-*"
	snapshotMagic   = "roost-snapshot"
	snapshotFormat  = 1 // bumped on any change a reader of the previous format cannot read

	snapshotBuffer = 1 << 20 // bytes buffered between the codec and the file
	snapshotCRCLen = 4       // the trailer: CRC-32C of everything before it, little endian
)

// Errors of reading a snapshot.
var (
	// errSnapshotCorrupt: the file is not a snapshot this version can read.
	errSnapshotCorrupt = errors.New("node: snapshot corrupt")
	// errSnapshotPartitions: a snapshot of a cluster with another --partitions.
	errSnapshotPartitions = errors.New("node: snapshot of another partition count")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// snapshotHeader is the first msgpack value of a snapshot file.
type snapshotHeader struct {
	Magic      string `msgpack:"magic"`      // snapshotMagic
	Format     int    `msgpack:"format"`     // snapshotFormat
	Node       string `msgpack:"node"`       // name of the node that wrote it
	Partitions int    `msgpack:"partitions"` // the cluster's partition count P
	Written    int64  `msgpack:"written"`    // when, in Unix nanoseconds
	Records    int    `msgpack:"records"`    // how many records follow
}

// Field names of a record in a snapshot, a msgpack map: a store.Record.
// Fields at their zero value are left out, except k and ver.
const (
	recKey     = "k"   // str: the key
	recValue   = "v"   // bin: the value; absent for a tombstone or an empty value
	recVersion = "ver" // uint: the version of the last write
	recCreated = "c"   // uint: the version that created the key
	recFlags   = "f"   // uint: opaque flags
	recExpires = "x"   // int: absolute expiry in Unix nanoseconds; absent = never
	recDeleted = "del" // bool: a tombstone, which carries k and ver only
)

// loadStats tells what loading a snapshot did.
type loadStats struct {
	Header  snapshotHeader
	Applied int // records the store took
	Skipped int // records it did not: expired while the node was down, or refused
	Bytes   int64
}

// writeSnapshot writes h and recs to path atomically: to a temporary file in
// the same directory, synced, then renamed over path. h.Records is set from
// recs. It returns the file's size.
func writeSnapshot(path string, h snapshotHeader, recs []store.Record) (size int64, err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, snapshotTemp)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	crc := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), snapshotBuffer)
	enc := msgpack.NewEncoder(w)
	enc.UseCompactInts(true)
	h.Magic, h.Format, h.Records = snapshotMagic, snapshotFormat, len(recs)
	if err := enc.Encode(&h); err != nil {
		return 0, err
	}
	for i := range recs {
		encodeRecord(enc, &recs[i])
	}
	if err := w.Flush(); err != nil { // a failed write fails every later one, and Flush
		return 0, err
	}
	if _, err := f.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return 0, err
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return 0, err
	}
	syncDir(dir)
	return st.Size(), nil
}

// syncDir makes a rename in dir durable, where the system allows it.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// readSnapshot checks the snapshot at path and gives each of its records to
// apply, which reports whether it took effect. Nothing reaches apply unless
// the whole file's checksum is right. It fails with an error wrapping
// fs.ErrNotExist (no snapshot), errSnapshotPartitions (written with another
// partition count than partitions; nothing applied) or errSnapshotCorrupt;
// with errSnapshotCorrupt, apply may have taken some records.
func readSnapshot(path string, partitions int, apply func(store.Record) (bool, error)) (ls loadStats, err error) {
	f, err := os.Open(path)
	if err != nil {
		return ls, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ls, err
	}
	ls.Bytes = st.Size()
	body := st.Size() - snapshotCRCLen
	if body <= 0 {
		return ls, fmt.Errorf("%w: %d bytes is too short", errSnapshotCorrupt, st.Size())
	}

	// First pass: the checksum, so that no flipped bit reaches the store
	// (a corrupt version would raise the version clock for good).
	crc := crc32.New(castagnoli)
	if _, err := io.Copy(crc, io.NewSectionReader(f, 0, body)); err != nil {
		return ls, err
	}
	var trailer [snapshotCRCLen]byte
	if _, err := f.ReadAt(trailer[:], body); err != nil {
		return ls, err
	}
	if want, got := binary.LittleEndian.Uint32(trailer[:]), crc.Sum32(); want != got {
		return ls, fmt.Errorf("%w: checksum %08x, the trailer says %08x (truncated or damaged)", errSnapshotCorrupt, got, want)
	}

	// Second pass: decode and apply.
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, body), snapshotBuffer)
	dec := msgpack.NewDecoder(r)
	h := &ls.Header
	if err := dec.Decode(h); err != nil {
		return ls, fmt.Errorf("%w: header: %v", errSnapshotCorrupt, err)
	}
	switch {
	case h.Magic != snapshotMagic:
		return ls, fmt.Errorf("%w: not a Roost snapshot (magic %q)", errSnapshotCorrupt, h.Magic)
	case h.Format != snapshotFormat:
		return ls, fmt.Errorf("%w: format %d, this version reads format %d", errSnapshotCorrupt, h.Format, snapshotFormat)
	case h.Records < 0:
		return ls, fmt.Errorf("%w: %d records", errSnapshotCorrupt, h.Records)
	case h.Partitions != partitions:
		return ls, fmt.Errorf("%w: written with --partitions %d, this node has %d", errSnapshotPartitions, h.Partitions, partitions)
	}
	for i := range h.Records {
		rec, err := decodeRecord(dec)
		if err != nil {
			return ls, fmt.Errorf("%w: record %d of %d: %v", errSnapshotCorrupt, i+1, h.Records, err)
		}
		ok, err := apply(rec)
		if errors.Is(err, store.ErrInvalid) {
			return ls, fmt.Errorf("%w: record %d of %d: %v", errSnapshotCorrupt, i+1, h.Records, err)
		}
		if ok {
			ls.Applied++
		} else {
			ls.Skipped++ // expired, older than what the store holds, or too large for it now
		}
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return ls, fmt.Errorf("%w: data after the %d records the header announces", errSnapshotCorrupt, h.Records)
	}
	return ls, nil
}

// encodeRecord writes r as a map of the rec* fields, by hand: reflection
// would double the time a snapshot takes. Errors stay in the writer.
func encodeRecord(enc *msgpack.Encoder, r *store.Record) {
	n := 2
	for _, set := range []bool{len(r.Value) > 0, r.Created != 0, r.Flags != 0, r.Expires != 0, r.Deleted} {
		if set {
			n++
		}
	}
	_ = enc.EncodeMapLen(n)
	_ = enc.EncodeString(recKey)
	_ = enc.EncodeString(r.Key)
	if len(r.Value) > 0 {
		_ = enc.EncodeString(recValue)
		_ = enc.EncodeBytes(r.Value)
	}
	_ = enc.EncodeString(recVersion)
	_ = enc.EncodeUint(r.Version)
	if r.Created != 0 {
		_ = enc.EncodeString(recCreated)
		_ = enc.EncodeUint(r.Created)
	}
	if r.Flags != 0 {
		_ = enc.EncodeString(recFlags)
		_ = enc.EncodeUint(r.Flags)
	}
	if r.Expires != 0 {
		_ = enc.EncodeString(recExpires)
		_ = enc.EncodeInt(r.Expires)
	}
	if r.Deleted {
		_ = enc.EncodeString(recDeleted)
		_ = enc.EncodeBool(true)
	}
}

// decodeRecord reads one record written by encodeRecord; unknown fields are
// skipped.
func decodeRecord(dec *msgpack.Decoder) (r store.Record, err error) {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return r, err
	}
	if n < 0 {
		return r, errors.New("nil instead of a record")
	}
	for range n {
		field, err := dec.DecodeString()
		if err != nil {
			return r, err
		}
		switch field {
		case recKey:
			r.Key, err = dec.DecodeString()
		case recValue:
			r.Value, err = dec.DecodeBytes()
		case recVersion:
			r.Version, err = dec.DecodeUint64()
		case recCreated:
			r.Created, err = dec.DecodeUint64()
		case recFlags:
			r.Flags, err = dec.DecodeUint64()
		case recExpires:
			r.Expires, err = dec.DecodeInt64()
		case recDeleted:
			r.Deleted, err = dec.DecodeBool()
		default:
			err = dec.Skip()
		}
		if err != nil {
			return r, fmt.Errorf("field %q: %w", field, err)
		}
	}
	return r, nil
}

// prepareDataDir creates dir if it is missing (0700), checks that the node
// can write there, and removes temporary files a crash in the middle of a
// snapshot left behind.
func prepareDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	probe, err := os.CreateTemp(dir, ".roost-probe-*")
	if err != nil {
		return fmt.Errorf("not writable: %w", err)
	}
	_ = probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return err
	}
	stale, _ := filepath.Glob(filepath.Join(dir, snapshotTemp))
	for _, name := range stale {
		_ = os.Remove(name)
	}
	return nil
}

// loadSnapshot prepares the data dir and loads its snapshot into the store,
// which is started and empty. Only a data dir the node cannot use is an
// error (ErrConfig): a snapshot it cannot read is logged, moved aside, and
// the node starts empty.
func (n *Node) loadSnapshot() error {
	dir := n.cfg.DataDir
	if dir == "" {
		return nil
	}
	if n.cfg.Role != RoleServer {
		n.log.Warn("--data-dir is ignored: a proxy holds no data", "data_dir", dir)
		return nil
	}
	if err := prepareDataDir(dir); err != nil {
		return fmt.Errorf("%w: --data-dir: %s: %v", ErrConfig, dir, err)
	}
	path := filepath.Join(dir, snapshotName)
	start := time.Now()
	ls, err := readSnapshot(path, n.cfg.Partitions, n.store.Apply)
	took := time.Since(start)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		n.log.Info("no warm-restart snapshot: starting empty", "path", path)
	case errors.Is(err, errSnapshotPartitions):
		n.log.Warn("warm-restart snapshot ignored: starting empty; a graceful stop replaces it", "path", path, "err", err)
	case err != nil:
		// Nothing half-loaded stays: start empty, as documented.
		n.store.Drop(func(string) bool { return true })
		bad := filepath.Join(dir, snapshotBadName)
		if rerr := os.Rename(path, bad); rerr != nil {
			n.log.Error("cannot move the unreadable snapshot aside", "path", path, "err", rerr)
			bad = ""
		}
		n.log.Error("warm-restart snapshot unreadable: starting empty", "path", path, "moved_to", bad, "err", err)
	default:
		if ls.Header.Node != n.cfg.Name {
			n.log.Warn("warm-restart snapshot was written by another node; loading it anyway", "path", path, "written_by", ls.Header.Node)
		}
		written := time.Unix(0, ls.Header.Written)
		n.log.Info("warm-restart snapshot loaded", "path", path, "records", ls.Header.Records,
			"loaded", ls.Applied, "skipped", ls.Skipped, "bytes", ls.Bytes, "took", took,
			"written", written.UTC().Format(time.RFC3339), "age", time.Since(written).Round(time.Millisecond))
		n.warm = ls.Applied > 0
	}
	return nil
}

// saveSnapshot writes the whole store, tombstones included, to the data
// dir's snapshot, for the next Start. Stop calls it once no API request runs
// any more and before the handover drops the data. It does nothing after
// Kill (a crash writes nothing: the previous snapshot stays), nor when Start
// failed (the snapshot there was not loaded in full, or not at all).
func (n *Node) saveSnapshot() {
	if n.cfg.DataDir == "" || n.cfg.Role != RoleServer || n.killed || n.store == nil {
		return
	}
	select {
	case <-n.ready:
	default:
		return
	}
	start := time.Now()
	// The service catalog's records belong to this process (catalog.go):
	// the next one starts with none, so they are not kept.
	recs := n.store.Export(func(key string) bool { return !strings.HasPrefix(key, svcPrefix) }, true)
	path := filepath.Join(n.cfg.DataDir, snapshotName)
	h := snapshotHeader{Node: n.cfg.Name, Partitions: n.cfg.Partitions, Written: time.Now().UnixNano()}
	size, err := writeSnapshot(path, h, recs)
	if err != nil {
		n.log.Error("cannot write the warm-restart snapshot; the previous one, if any, stays", "path", path, "err", err)
		return
	}
	n.log.Info("warm-restart snapshot written", "path", path, "records", len(recs), "bytes", size, "took", time.Since(start))
}
