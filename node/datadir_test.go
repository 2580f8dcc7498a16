package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/internal/testkit"
	"github.com/vmihailenco/msgpack/v5"
)

// newTestStore is a store on a manual clock, started and stopped with the test.
func newTestStore(t *testing.T, clock store.Clock) *store.Store {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.Clock = clock
	s, err := store.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

func mustSet(t *testing.T, s *store.Store, req store.SetRequest) store.Entry {
	t.Helper()
	e, err := s.Set(req)
	if err != nil {
		t.Fatalf("set %q: %v", req.Key, err)
	}
	return e
}

// sortedExport is every record of s, tombstones included, by key.
func sortedExport(s *store.Store) []store.Record {
	recs := s.Export(nil, true)
	slices.SortFunc(recs, func(a, b store.Record) int { return strings.Compare(a.Key, b.Key) })
	return recs
}

// counting returns an apply that counts its calls before applying to s.
func counting(s *store.Store, calls *int) func(store.Record) (bool, error) {
	return func(r store.Record) (bool, error) {
		*calls++
		return s.Apply(r)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	clock := store.NewManualClock(time.Unix(1_700_000_000, 0))
	src := newTestStore(t, clock)
	mustSet(t, src, store.SetRequest{Key: "plain", Value: []byte("v1")})
	mustSet(t, src, store.SetRequest{Key: "plain", Value: []byte("v2")}) // Created < Version
	mustSet(t, src, store.SetRequest{Key: "flags.and.ttl", Value: []byte("f"), Flags: 42, TTL: time.Hour})
	mustSet(t, src, store.SetRequest{Key: "empty", Value: nil})
	mustSet(t, src, store.SetRequest{Key: "bin\x00\xff", Value: []byte{0, 1, 2, 0xff}})
	mustSet(t, src, store.SetRequest{Key: "gone", Value: []byte("x")})
	delVersion, err := src.Delete(store.DeleteRequest{Key: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	want := sortedExport(src)
	if len(want) != 5 || !slices.ContainsFunc(want, func(r store.Record) bool { return r.Deleted }) {
		t.Fatalf("source export %+v: want 4 live records and a tombstone", want)
	}

	path := filepath.Join(t.TempDir(), snapshotName)
	if _, err := writeSnapshot(path, snapshotHeader{Node: "a", Partitions: 271, Written: 7}, want); err != nil {
		t.Fatal(err)
	}
	dst := newTestStore(t, clock)
	ls, err := readSnapshot(path, 271, dst.Apply)
	if err != nil {
		t.Fatal(err)
	}
	if h := ls.Header; h.Magic != snapshotMagic || h.Format != snapshotFormat || h.Node != "a" || h.Partitions != 271 || h.Written != 7 || h.Records != 5 {
		t.Errorf("header %+v", h)
	}
	if ls.Applied != 5 || ls.Skipped != 0 {
		t.Errorf("applied %d, skipped %d; want 5, 0", ls.Applied, ls.Skipped)
	}
	if got := sortedExport(dst); !reflect.DeepEqual(got, want) {
		t.Errorf("loaded records differ:\n got %+v\nwant %+v", got, want)
	}
	// The tombstone refuses an older set of the deleted key, as it did.
	if _, deleted, err := dst.Lookup("gone"); !errors.Is(err, store.ErrNotFound) || deleted != delVersion {
		t.Errorf("gone: err %v, tombstone version %d; want not found with tombstone %d", err, deleted, delVersion)
	}
	if ok, _ := dst.Apply(store.Record{Key: "gone", Value: []byte("old"), Version: delVersion - 1, Created: delVersion - 1}); ok {
		t.Error("an older set went past the loaded tombstone")
	}
	// Loading raised the version clock: the next local write is newer than
	// every loaded version.
	if e := mustSet(t, dst, store.SetRequest{Key: "after", Value: []byte("x")}); e.Version <= delVersion {
		t.Errorf("write after load got version %d, not above the loaded %d", e.Version, delVersion)
	}
	// The file is replaced atomically: no temporary file stays behind.
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), snapshotTemp)); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestSnapshotRecordFormat: encodeRecord writes the map docs/warm-restart.md
// documents (any msgpack library reads it with the field names), and
// decodeRecord skips fields it does not know.
func TestSnapshotRecordFormat(t *testing.T) {
	for _, r := range []store.Record{
		{Key: "live", Value: []byte("v"), Version: 1 << 60, Created: 5, Flags: 7, Expires: 1 << 62},
		{Key: "bare", Version: 3, Created: 3},
		{Key: "tomb", Version: 9, Deleted: true},
	} {
		var b bytes.Buffer
		encodeRecord(msgpack.NewEncoder(&b), &r)
		var generic snapshotRecord
		if err := msgpack.Unmarshal(b.Bytes(), &generic); err != nil {
			t.Fatal(err)
		}
		want := snapshotRecord{Key: r.Key, Value: r.Value, Version: r.Version, Created: r.Created, Flags: r.Flags, Expires: r.Expires, Deleted: r.Deleted}
		if !reflect.DeepEqual(generic, want) {
			t.Errorf("%s decodes as %+v, want %+v", r.Key, generic, want)
		}
	}
	data, err := msgpack.Marshal(map[string]any{"k": "a", "ver": 4, "c": 4, "later": []int{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(msgpack.NewDecoder(bytes.NewReader(data)))
	if want := (store.Record{Key: "a", Version: 4, Created: 4}); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("decodeRecord = %+v, %v; want %+v", got, err, want)
	}
}

func TestSnapshotSkipsWhatExpiredWhileDown(t *testing.T) {
	clock := store.NewManualClock(time.Unix(1_700_000_000, 0))
	src := newTestStore(t, clock)
	mustSet(t, src, store.SetRequest{Key: "short", Value: []byte("s"), TTL: time.Minute})
	long := mustSet(t, src, store.SetRequest{Key: "long", Value: []byte("l"), TTL: time.Hour})
	mustSet(t, src, store.SetRequest{Key: "forever", Value: []byte("f")})
	path := filepath.Join(t.TempDir(), snapshotName)
	if _, err := writeSnapshot(path, snapshotHeader{Partitions: 3}, src.Export(nil, true)); err != nil {
		t.Fatal(err)
	}

	clock.Advance(2 * time.Minute) // the node was down for two minutes
	dst := newTestStore(t, clock)
	ls, err := readSnapshot(path, 3, dst.Apply)
	if err != nil {
		t.Fatal(err)
	}
	if ls.Applied != 2 || ls.Skipped != 1 {
		t.Errorf("applied %d, skipped %d; want 2, 1", ls.Applied, ls.Skipped)
	}
	if _, err := dst.Get("short"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("short: %v, want not found: its TTL passed while the node was down", err)
	}
	e, err := dst.Get("long")
	if err != nil || e.Expires != long.Expires {
		t.Errorf("long: %+v, %v; want its original expiry %d", e, err, long.Expires)
	}
	if _, err := dst.Get("forever"); err != nil {
		t.Errorf("forever: %v", err)
	}
}

// snapshotRecord is a record as the snapshot format documents it, for
// tests that encode records with reflection instead of encodeRecord.
type snapshotRecord struct {
	Key     string `msgpack:"k"`
	Value   []byte `msgpack:"v,omitempty"`
	Version uint64 `msgpack:"ver"`
	Created uint64 `msgpack:"c,omitempty"`
	Flags   uint64 `msgpack:"f,omitempty"`
	Expires int64  `msgpack:"x,omitempty"`
	Deleted bool   `msgpack:"del,omitempty"`
}

// rawSnapshot is a file of the msgpack values vals and the CRC trailer (of
// what precedes it), for tests that build what writeSnapshot never would.
func rawSnapshot(t *testing.T, vals ...any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := msgpack.NewEncoder(&b)
	for _, v := range vals {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return binary.LittleEndian.AppendUint32(b.Bytes(), crc32.Checksum(b.Bytes(), castagnoli))
}

func TestSnapshotCorrupt(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	recs := []store.Record{
		{Key: "a", Value: bytes.Repeat([]byte("a"), 100), Version: 10, Created: 10},
		{Key: "b", Version: 11, Deleted: true},
	}
	if _, err := writeSnapshot(good, snapshotHeader{Partitions: 5}, recs); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0x10
	hdr := snapshotHeader{Magic: snapshotMagic, Format: snapshotFormat, Partitions: 5, Records: 1}
	rec := snapshotRecord{Key: "a", Value: []byte("v"), Version: 10, Created: 10}
	tests := []struct {
		name       string
		data       []byte
		applyCalls int // how many records reached apply before the fault was seen
	}{
		{"empty", nil, 0},
		{"truncated", data[:len(data)-10], 0},
		{"one bit flipped", flipped, 0},
		{"garbage", bytes.Repeat([]byte{0xc1}, 64), 0},
		{"wrong magic", rawSnapshot(t, &snapshotHeader{Magic: "redis", Format: snapshotFormat, Partitions: 5}), 0},
		{"newer format", rawSnapshot(t, &snapshotHeader{Magic: snapshotMagic, Format: snapshotFormat + 1, Partitions: 5}), 0},
		{"fewer records than announced", rawSnapshot(t, &hdr), 0},
		{"more records than announced", rawSnapshot(t, &hdr, &rec, &rec), 1},
		{"invalid record", rawSnapshot(t, &hdr, &snapshotRecord{Key: "a", Value: []byte("v")}), 1}, // version 0
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			calls := 0
			_, err := readSnapshot(path, 5, counting(newTestStore(t, nil), &calls))
			if !errors.Is(err, errSnapshotCorrupt) {
				t.Errorf("readSnapshot = %v, want errSnapshotCorrupt", err)
			}
			if calls != tt.applyCalls {
				t.Errorf("%d records applied before the fault was seen, want %d", calls, tt.applyCalls)
			}
		})
	}
	if _, err := readSnapshot(filepath.Join(dir, "missing"), 5, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestSnapshotOfAnotherPartitionCount(t *testing.T) {
	path := filepath.Join(t.TempDir(), snapshotName)
	if _, err := writeSnapshot(path, snapshotHeader{Partitions: 7}, []store.Record{{Key: "k", Value: []byte("v"), Version: 1, Created: 1}}); err != nil {
		t.Fatal(err)
	}
	calls := 0
	if _, err := readSnapshot(path, 271, counting(newTestStore(t, nil), &calls)); !errors.Is(err, errSnapshotPartitions) {
		t.Fatalf("readSnapshot = %v, want errSnapshotPartitions", err)
	}
	if calls != 0 {
		t.Errorf("%d records of a snapshot of another partition count were applied", calls)
	}
}

func dataDirNode(t *testing.T, dir string, log *testkit.LogBuffer, edit func(*Config)) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Name = "d"
	cfg.Listen = "127.0.0.1:-1"
	cfg.HTTP = HTTPOff
	cfg.MaxMemory = 64 << 20
	cfg.DataDir = dir
	cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	if edit != nil {
		edit(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

func startDataDirNode(t *testing.T, dir string, log *testkit.LogBuffer) *Node {
	t.Helper()
	n := dataDirNode(t, dir, log, nil)
	if err := n.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return n
}

func TestStopWritesTheSnapshotAndKillDoesNot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	var log testkit.LogBuffer
	n := startDataDirNode(t, dir, &log)
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir: %v, %v; want it created with mode 0700", fi, err)
	}
	for i := range 50 {
		if r := n.apply(&wire.Request{Op: wire.OpSet, Key: fmt.Sprintf("k%d", i), Value: []byte("v")}, ""); r.Code != wire.CodeOK {
			t.Fatal(r.Error)
		}
	}
	if r := n.apply(&wire.Request{Op: wire.OpDel, Key: "k0"}, ""); r.Code != wire.CodeOK {
		t.Fatal(r.Error)
	}
	want := sortedExport(n.store)
	n.Stop()
	if !strings.Contains(log.String(), "warm-restart snapshot written") {
		t.Errorf("no log line of the snapshot written:\n%s", log.String())
	}

	// The next start loads it, then a crash writes nothing.
	n2 := startDataDirNode(t, dir, &log)
	if got := sortedExport(n2.store); !reflect.DeepEqual(got, want) {
		t.Fatalf("after restart:\n got %+v\nwant %+v", got, want)
	}
	if r := n2.apply(&wire.Request{Op: wire.OpSet, Key: "lost", Value: []byte("v")}, ""); r.Code != wire.CodeOK {
		t.Fatal(r.Error)
	}
	n2.Kill()
	ls, err := readSnapshot(filepath.Join(dir, snapshotName), DefaultPartitions, func(r store.Record) (bool, error) {
		if r.Key == "lost" {
			t.Error("Kill wrote a snapshot")
		}
		return true, nil
	})
	if err != nil || ls.Header.Records != len(want) {
		t.Errorf("snapshot after Kill: %d records, %v; want the %d of the graceful stop", ls.Header.Records, err, len(want))
	}
}

func TestCorruptSnapshotIsMovedAsideAndTheNodeStartsEmpty(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, snapshotName)
	if err := os.WriteFile(path, []byte("not a snapshot at all"), 0o600); err != nil {
		t.Fatal(err)
	}
	var log testkit.LogBuffer
	n := startDataDirNode(t, dir, &log)
	if keys := n.store.Stats().Keys; keys != 0 {
		t.Errorf("%d keys, want an empty store", keys)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the corrupt snapshot is still in place: %v", err)
	}
	if bad, err := os.ReadFile(filepath.Join(dir, snapshotBadName)); err != nil || string(bad) != "not a snapshot at all" {
		t.Errorf("%s = %q, %v; want the corrupt file moved there", snapshotBadName, bad, err)
	}
	if l := log.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "snapshot unreadable") {
		t.Errorf("no error logged:\n%s", l)
	}
	// It serves, and its graceful stop writes a good snapshot again.
	if r := n.apply(&wire.Request{Op: wire.OpSet, Key: "k", Value: []byte("v")}, ""); r.Code != wire.CodeOK {
		t.Fatal(r.Error)
	}
	n.Stop()
	if _, err := readSnapshot(path, DefaultPartitions, func(store.Record) (bool, error) { return true, nil }); err != nil {
		t.Errorf("snapshot after the stop: %v", err)
	}
}

func TestSnapshotHalfAppliedIsUndone(t *testing.T) {
	// A checksum that holds over a record the store refuses as invalid: the
	// records applied before it are dropped again.
	dir := t.TempDir()
	hdr := snapshotHeader{Magic: snapshotMagic, Format: snapshotFormat, Partitions: DefaultPartitions, Records: 2}
	data := rawSnapshot(t, &hdr, &snapshotRecord{Key: "a", Value: []byte("v"), Version: 10, Created: 10}, &snapshotRecord{Key: "b", Version: 11, Created: 12})
	if err := os.WriteFile(filepath.Join(dir, snapshotName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	var log testkit.LogBuffer
	n := startDataDirNode(t, dir, &log)
	if keys := n.store.Stats().Keys; keys != 0 {
		t.Errorf("%d keys, want none of a snapshot that failed half-way", keys)
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotBadName)); err != nil {
		t.Errorf("not moved aside: %v", err)
	}
}

func TestSnapshotOfAnotherPartitionCountIsIgnored(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, snapshotName)
	if _, err := writeSnapshot(path, snapshotHeader{Partitions: 7}, []store.Record{{Key: "k", Value: []byte("v"), Version: 1, Created: 1}}); err != nil {
		t.Fatal(err)
	}
	var log testkit.LogBuffer
	n := startDataDirNode(t, dir, &log)
	if keys := n.store.Stats().Keys; keys != 0 {
		t.Errorf("%d keys loaded from a snapshot of 7 partitions into a node of %d", keys, DefaultPartitions)
	}
	if l := log.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "--partitions 7") {
		t.Errorf("no warning naming the partition count:\n%s", l)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the snapshot was moved: %v", err)
	}
}

func TestDataDirNotUsableIsAConfigError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "sub"), readOnly} {
		if dir == readOnly && os.Geteuid() == 0 {
			continue // root writes anywhere
		}
		var log testkit.LogBuffer
		n := dataDirNode(t, dir, &log, nil)
		err := n.Start()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--data-dir") || !strings.Contains(err.Error(), dir) {
			t.Errorf("Start with --data-dir %s = %v, want ErrConfig naming --data-dir and the path", dir, err)
		}
	}
}
