package replicator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/actors/store"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/internal/testkit"
	"github.com/roostkv/roost/partition"
)

// These tests run the shell: replicators over a real embedded NATS server,
// each node with its own connection and store, and a membership the test
// controls (the claims each node announces are what the others read).

const shellPartitions = 8

// fakeMembers is the membership view the test's nodes share.
type fakeMembers struct {
	mu      sync.Mutex
	members map[string]membership.Member
}

func (f *fakeMembers) view() membership.View {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := membership.View{}
	for _, name := range slices.Sorted(maps.Keys(f.members)) {
		v.Members = append(v.Members, f.members[name])
	}
	return v
}

// setClaims is a node's heartbeat: its claims, heard now.
func (f *fakeMembers) setClaims(name string) func([]byte) {
	return func(b []byte) {
		f.mu.Lock()
		defer f.mu.Unlock()
		m := f.members[name]
		if m.Status == membership.Alive {
			m.Extra, m.LastSeen = slices.Clone(b), time.Now()
			f.members[name] = m
		}
	}
}

type shellNode struct {
	name string
	st   *store.Store
	r    *Replicator
}

type shellCluster struct {
	t       *testing.T
	url     string
	members *fakeMembers
	nodes   map[string]*shellNode
}

func newShellCluster(t *testing.T) *shellCluster {
	srv := testkit.StartNATS(t)
	return &shellCluster{t: t, url: srv.ClientURL(), members: &fakeMembers{members: map[string]membership.Member{}}, nodes: map[string]*shellNode{}}
}

// add starts a node; the tables are set by table.
func (c *shellCluster) add(name string) *shellNode {
	c.t.Helper()
	return c.addWith(name, store.DefaultConfig(), nil)
}

// addWith starts a node with its store's config; edit, if not nil,
// changes the replicator's.
func (c *shellCluster) addWith(name string, scfg store.Config, edit func(*Config)) *shellNode {
	c.t.Helper()
	st, err := store.New(scfg)
	if err != nil {
		c.t.Fatal(err)
	}
	st.Start()
	c.t.Cleanup(st.Stop)
	nc := testkit.Connect(c.t, c.url)
	id := "id-" + name
	c.members.mu.Lock()
	c.members.members[name] = membership.Member{ID: id, Name: name, Role: membership.RoleServer, Status: membership.Alive, LastSeen: time.Now()}
	c.members.mu.Unlock()
	cfg := Config{Conn: nc, Subjects: wire.NewSubjects(""), Store: st, Name: name, ID: id, Partitions: shellPartitions,
		Members: c.members.view, SetClaims: c.members.setClaims(name),
		Heartbeat: 40 * time.Millisecond, Tick: 10 * time.Millisecond, AntiEntropy: 100 * time.Millisecond,
		AckTimeout: 2 * time.Second, RequestTimeout: 300 * time.Millisecond, ChunkBytes: 512,
		Logger: slog.New(slog.DiscardHandler)}
	if edit != nil {
		edit(&cfg)
	}
	r := New(cfg)
	if err := r.Start(); err != nil {
		c.t.Fatal(err)
	}
	n := &shellNode{name: name, st: st, r: r}
	c.t.Cleanup(r.Stop)
	c.nodes[name] = n
	return n
}

// table hands every running node the table over the live members.
func (c *shellCluster) table() *partition.Table {
	v := c.members.view()
	ids := map[string]string{}
	var names []string
	for _, m := range v.Live("") {
		ids[m.Name] = m.ID
		names = append(names, m.Name)
	}
	t := partition.Compute(names, shellPartitions, 2)
	for _, name := range names {
		c.nodes[name].r.SetTable(t, ids)
	}
	return t
}

// kill stops a node without a word, as kill -9 does, and marks it dead.
func (c *shellCluster) kill(name string) {
	c.nodes[name].r.Stop()
	c.members.mu.Lock()
	m := c.members.members[name]
	m.Status = membership.Dead
	c.members.members[name] = m
	c.members.mu.Unlock()
	delete(c.nodes, name)
}

// serving waits until every partition has a ready primary in t.
func (c *shellCluster) serving(t *partition.Table) {
	c.t.Helper()
	testkit.Eventually(c.t, 10*time.Second, func() error {
		for p := range shellPartitions {
			if !c.nodes[t.Owners(p)[0]].r.Ready(p) {
				return fmt.Errorf("partition %d not served by %s", p, t.Owners(p)[0])
			}
		}
		return nil
	})
}

// safe waits until node name sees every partition with R copies in sync.
func (c *shellCluster) safe(name string) {
	c.t.Helper()
	testkit.Eventually(c.t, 10*time.Second, func() error {
		if s := c.nodes[name].r.Safety(); !s.Safe() {
			return fmt.Errorf("%s: %+v", name, s)
		}
		return nil
	})
}

// set writes key at its primary with ack=all.
func (c *shellCluster) set(t *partition.Table, key, value string) uint64 {
	c.t.Helper()
	p := partition.Of(key, shellPartitions)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.nodes[t.Owners(p)[0]].r.Write(ctx, p, AckAll, []Op{{Set: &store.SetRequest{Key: key, Value: []byte(value)}}})
	if err != nil || res[0].Err != nil {
		c.t.Fatalf("set %s: %v %v", key, err, res)
	}
	return res[0].Entry.Version
}

// holds waits until node holds key at version v or later.
func (c *shellCluster) holds(name, key string, v uint64) {
	c.t.Helper()
	testkit.Eventually(c.t, 10*time.Second, func() error {
		e, err := c.nodes[name].st.Get(key)
		if err != nil || e.Version < v {
			return fmt.Errorf("%s holds %s at %d (%v), want %d", name, key, e.Version, err, v)
		}
		return nil
	})
}

// An ack=all write is on every owner when it is acknowledged; a killed
// primary's partitions are taken over with every acknowledged write.
func TestShellReplicatesAndFailsOver(t *testing.T) {
	c := newShellCluster(t)
	for _, name := range []string{"a", "b", "c"} {
		c.add(name)
	}
	tab := c.table()
	c.serving(tab)
	c.safe("b")
	want := map[string]uint64{}
	for i := range 40 {
		key := fmt.Sprintf("k%d", i)
		want[key] = c.set(tab, key, "v1")
		for _, o := range tab.Owners(partition.Of(key, shellPartitions)) {
			if e, err := c.nodes[o].st.Get(key); err != nil || e.Version != want[key] {
				t.Fatalf("ack=all write of %s acknowledged before owner %s applied it (%v, %v)", key, o, e, err)
			}
		}
	}
	c.kill("a")
	if s := c.nodes["b"].r.Safety(); s.Safe() {
		t.Fatalf("safe with a dead owner in the table: %+v", s)
	}
	tab = c.table()
	c.serving(tab)
	c.safe("b")
	for key, v := range want {
		p := partition.Of(key, shellPartitions)
		for _, o := range tab.Owners(p) {
			c.holds(o, key, v)
		}
	}
	if st := c.nodes["b"].r.Status(); len(st) == 0 {
		t.Fatal("no partition status")
	}
}

// A graceful leave hands every copy over before it returns, and the copies
// are kept in the store for the warm-restart snapshot.
func TestShellHandOver(t *testing.T) {
	c := newShellCluster(t)
	for _, name := range []string{"a", "b", "c"} {
		c.add(name)
	}
	tab := c.table()
	c.serving(tab)
	want := map[string]uint64{}
	for i := range 40 {
		key := fmt.Sprintf("k%d", i)
		want[key] = c.set(tab, key, "v")
	}
	leaving := c.nodes["b"]
	held := leaving.st.Stats().Keys
	leaving.r.KeepCopies()
	without := tab.Without("b")
	ids := map[string]string{"a": "id-a", "c": "id-c", "b": "id-b"}
	c.nodes["a"].r.SetTable(without, ids)
	c.nodes["c"].r.SetTable(without, ids)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := leaving.r.HandOver(ctx, without, ids); err != nil {
		t.Fatalf("hand over: %v", err)
	}
	if got := leaving.st.Stats().Keys; got != held {
		t.Fatalf("the leaving node dropped copies: %d keys, had %d", got, held)
	}
	for key, v := range want {
		for _, o := range without.Owners(partition.Of(key, shellPartitions)) {
			c.holds(o, key, v)
		}
	}
}

// A replica's copy that differs from its primary's (a split's writes) is
// found by anti-entropy and repaired: the newer record reaches the primary.
func TestShellAntiEntropyRepairs(t *testing.T) {
	c := newShellCluster(t)
	for _, name := range []string{"a", "b"} {
		c.add(name)
	}
	tab := c.table()
	c.serving(tab)
	key := "split-key"
	v := c.set(tab, key, "old")
	owners := tab.Owners(partition.Of(key, shellPartitions))
	replica := c.nodes[owners[1]]
	newer := store.Record{Key: key, Value: []byte("newer"), Version: v + 1000, Created: v}
	if ok, err := replica.st.Apply(newer); !ok || err != nil {
		t.Fatalf("apply on the replica: %v %v", ok, err)
	}
	c.holds(owners[0], key, newer.Version)
}

// Writes fail clearly where this node does not take them, and a write
// waiting for a replica that never answers times out.
func TestShellWriteErrors(t *testing.T) {
	c := newShellCluster(t)
	a := c.add("a")
	c.add("b")
	tab := c.table()
	c.serving(tab)
	key := "k"
	p := partition.Of(key, shellPartitions)
	other := c.nodes[tab.Owners(p)[1]]
	if _, err := other.r.Submit(p, AckPrimary, []Op{{Set: &store.SetRequest{Key: key}}}, make([]OpResult, 1)); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("write at a replica: %v, want ErrNotPrimary", err)
	}
	if err := other.r.AwaitReady(context.Background(), p); !errors.Is(err, ErrNotPrimary) {
		t.Fatalf("AwaitReady at a replica: %v", err)
	}
	res := make([]OpResult, 1)
	led := -1
	for q := range shellPartitions {
		if tab.Owners(q)[0] == "a" {
			led = q
		}
	}
	if _, err := a.r.Submit(led, AckPrimary, []Op{{}}, res); err != nil || !errors.Is(res[0].Err, errBadOp) {
		t.Fatalf("an empty op: %v, %v", err, res[0].Err)
	}
	// The replica stops answering: the next ack=all write times out.
	primary := c.nodes[tab.Owners(p)[0]]
	other.r.Stop()
	pw, err := primary.r.Submit(p, AckAll, []Op{{Set: &store.SetRequest{Key: key, Value: []byte("v")}}}, make([]OpResult, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.Wait(); !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("ack=all with a silent replica: %v, want ErrAckTimeout", err)
	}
	// The write is not acknowledged: a read of its key waits, one of
	// another key does not; once the silent replica leaves the owners, the
	// read goes through.
	if err := primary.r.ReadBarrier(p, key, 50*time.Millisecond); !errors.Is(err, ErrAckTimeout) {
		t.Fatalf("read of a key with an unacknowledged write: %v, want ErrAckTimeout", err)
	}
	if err := primary.r.ReadBarrier(p, "other", 50*time.Millisecond); err != nil {
		t.Fatalf("read of another key: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- primary.r.ReadBarrier(p, key, 5*time.Second) }()
	primary.r.SetTable(partition.Compute([]string{primary.name}, shellPartitions, 2), map[string]string{primary.name: "id-" + primary.name})
	if err := <-done; err != nil {
		t.Fatalf("read after the replica left: %v", err)
	}
	if lag := primary.r.Lag(); lag.Entries < 0 {
		t.Fatal("negative lag count")
	}
}

// Config.Validate names what is missing.
func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("an empty config validated")
	}
	d := DefaultConfig()
	if d.AckTimeout != DefaultAckTimeout || d.Tick <= 0 || d.Heartbeat <= 0 {
		t.Fatalf("defaults: %+v", d)
	}
}

// inSync counts the primary when ready and the replicas synced under its
// term, from claims or this node's own state.
func TestInSync(t *testing.T) {
	primary := Claim{Role: RolePrimary, Ready: true, Term: 7}
	synced := Claim{Role: RoleReplica, Ready: true, Term: 7}
	for _, tc := range []struct {
		name   string
		owners []string
		own    Claim
		claims map[string]Claim
		want   int
	}{
		{"no owners", nil, Claim{}, nil, 0},
		{"both in sync", []string{"a", "b"}, primary, map[string]Claim{"b": synced}, 2},
		{"self replica in sync", []string{"b", "a"}, synced, map[string]Claim{"b": primary}, 2},
		{"replica syncing", []string{"a", "b"}, primary, map[string]Claim{"b": {Role: RoleReplica, Term: 7}}, 1},
		{"replica of an older term", []string{"a", "b"}, primary, map[string]Claim{"b": {Role: RoleReplica, Ready: true, Term: 6}}, 1},
		{"primary still pulling", []string{"a", "b"}, Claim{Role: RolePrimary, Term: 7}, map[string]Claim{"b": synced}, 0},
		{"replica silent", []string{"a", "b"}, primary, nil, 1},
	} {
		if got := inSync(tc.owners, "a", tc.own, tc.claims); got != tc.want {
			t.Errorf("%s: %d in sync, want %d", tc.name, got, tc.want)
		}
	}
}
