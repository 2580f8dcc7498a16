package integration

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/internal/testkit"
	"github.com/roostkv/roost/node"
)

// logTap keeps a node's log lines for a test to look at.
type logTap struct{ testkit.LogBuffer }

func (l *logTap) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

var loadedRE = regexp.MustCompile(`msg="warm-restart snapshot loaded".* loaded=(\d+)`)

// snapshotLoaded is how many records the node said it loaded from its
// snapshot at start; it fails the test when it said nothing of it.
func snapshotLoaded(t *testing.T, tap *logTap) int {
	t.Helper()
	m := loadedRE.FindStringSubmatch(tap.String())
	if m == nil {
		t.Fatalf("the node did not log loading its snapshot:\n%s", tap.String())
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// written is the last acknowledged write of a key.
type written struct {
	value   string // "" for a delete
	version uint64
}

// TestWarmRestartSingleNode: a node with --data-dir that stops gracefully
// serves every key again after a restart, with its value, flags and
// version, before it has any peer; what was deleted stays deleted, and new
// writes get versions above the loaded ones.
func TestWarmRestartSingleNode(t *testing.T) {
	t.Parallel()
	const keys = 1000
	dir := filepath.Join(t.TempDir(), "data")
	withDir := func(c *node.Config) { c.DataDir = dir }

	n1 := startNode(t, withDir)
	nc := connect(t, n1)
	last := map[string]written{}
	var highest uint64
	for i := range keys {
		k := fmt.Sprintf("warm.%d", i)
		v := fmt.Sprintf("value %d", i)
		r := request(t, nc, "roost.set."+k, []byte(v), "Roost-Flags", strconv.Itoa(i))
		wantCode(t, "set "+k, r, 200)
		last[k] = written{v, r.version(t)}
		highest = max(highest, r.version(t))
	}
	for i := 0; i < keys; i += 100 {
		k := fmt.Sprintf("warm.%d", i)
		r := request(t, nc, "roost.del."+k, nil)
		wantCode(t, "del "+k, r, 200)
		last[k] = written{"", r.version(t)}
		highest = max(highest, r.version(t))
	}
	n1.Stop()
	if _, err := os.Stat(filepath.Join(dir, "roost.snapshot")); err != nil {
		t.Fatalf("no snapshot after a graceful stop: %v", err)
	}

	var tap logTap
	n2 := startNode(t, func(c *node.Config) {
		withDir(c)
		c.Logger = tap.logger()
	})
	if got := snapshotLoaded(t, &tap); got != keys { // 900 keys and 100 tombstones
		t.Errorf("loaded %d records, want %d", got, keys)
	}
	if alive := len(n2.Members().Members); alive != 1 {
		t.Fatalf("the restarted node sees %d members, want itself alone", alive)
	}
	nc = connect(t, n2)
	for i := range keys {
		k := fmt.Sprintf("warm.%d", i)
		w := last[k]
		r := request(t, nc, "roost.get."+k, nil)
		if w.value == "" {
			wantCode(t, "get deleted "+k, r, 404)
			continue
		}
		wantCode(t, "get "+k, r, 200)
		if string(r.body) != w.value || r.version(t) != w.version || r.hdr.Get("Roost-Flags") != strconv.Itoa(i) {
			t.Fatalf("%s = %q version %d flags %s, want %q version %d flags %d", k, r.body, r.version(t), r.hdr.Get("Roost-Flags"), w.value, w.version, i)
		}
	}
	r := request(t, nc, "roost.set.after", []byte("x"))
	wantCode(t, "set after restart", r, 200)
	if v := r.version(t); v <= highest {
		t.Errorf("write after restart got version %d, not above the loaded %d", v, highest)
	}
}

// TestWarmRestartRejoinsWithLatestValues: n3 of three stops gracefully and
// keeps a snapshot; n1 and n2 take more sets and deletes; n3 restarts from
// its snapshot, rejoins, and once settled every key reads its latest value
// (or is absent, if deleted) through every node: the older values of the
// snapshot are merged by version and never win.
func TestWarmRestartRejoinsWithLatestValues(t *testing.T) {
	t.Parallel()
	skipInRaceStep(t, "the snapshot path is raced by TestWarmRestartSingleNode, the rejoin by TestR3RejoinCatchesUp")
	const keys = 300
	dir := filepath.Join(t.TempDir(), "n3")
	nodes := startCluster(t, 3, func(i int, c *node.Config) {
		if i == 2 {
			c.DataDir = dir
		}
	})
	nc := connect(t, nodes[0])
	last := map[string]written{}
	key := func(i int) string { return fmt.Sprintf("r%d", i) }
	set := func(i int, round string) {
		t.Helper()
		k, v := key(i), fmt.Sprintf("%s %s", key(i), round)
		r := request(t, nc, "roost.set."+k, []byte(v), "Roost-Ack", "all")
		wantCode(t, "set "+k, r, 200)
		last[k] = written{v, r.version(t)}
	}
	del := func(i int) {
		t.Helper()
		r := request(t, nc, "roost.del."+key(i), nil, "Roost-Ack", "all")
		wantCode(t, "del "+key(i), r, 200)
		last[key(i)] = written{"", r.version(t)}
	}
	for i := range keys {
		set(i, "before")
	}

	nodes[2].Stop()
	eventually(t, 2*time.Second, func() error {
		if s := memberStatus(nodes[0], "n3"); s != membership.Left {
			return fmt.Errorf("n1 sees n3 %s", s)
		}
		if s := nodes[0].Status().Cluster.Servers; len(s) != 2 {
			return fmt.Errorf("n1 routes over %v", s)
		}
		return nil
	})
	// While n3 is away: a third of the keys get new values, a third are
	// deleted, and new keys appear.
	for i := range keys {
		switch i % 3 {
		case 0:
			set(i, "while n3 was away")
		case 1:
			del(i)
		}
	}
	for i := keys; i < keys+50; i++ {
		set(i, "new")
	}

	var tap logTap
	back := startNode(t, func(c *node.Config) {
		c.Name = "n3"
		c.ClusterListen = "127.0.0.1:-1"
		c.Join = []string{nodes[0].Bus().ClusterAddr()}
		c.DataDir = dir
		c.Logger = tap.logger()
		fastBeats(c)
	})
	if loaded := snapshotLoaded(t, &tap); loaded == 0 {
		t.Fatal("n3 loaded nothing from its snapshot: the test would prove nothing")
	}
	cluster := []*node.Node{nodes[0], nodes[1], back}
	waitMembers(t, cluster, 3, 5*time.Second)

	conns := map[string]*nats.Conn{}
	for _, n := range cluster {
		conns[n.Name()] = connect(t, n)
	}
	// check reads every key through every node: the latest value and its
	// version, or absent when the latest write deleted it.
	check := func() error {
		for _, n := range cluster {
			for i := range keys + 50 {
				k := key(i)
				w := last[k]
				r := request(t, conns[n.Name()], "roost.get."+k, nil)
				switch {
				case w.value == "" && r.code != 404:
					return fmt.Errorf("%s through %s = %d %q %s, deleted at version %d", k, n.Name(), r.code, r.body, r.err, w.version)
				case w.value != "" && (r.code != 200 || string(r.body) != w.value || r.version(t) != w.version):
					return fmt.Errorf("%s through %s = %d %q %s, want %q version %d", k, n.Name(), r.code, r.body, r.err, w.value, w.version)
				}
			}
		}
		return nil
	}
	start := time.Now()
	eventually(t, 20*time.Second, check)
	t.Logf("every key reads its latest write through every node %s after n3 rejoined", time.Since(start).Round(time.Millisecond))
	// Settled means settled: the owners' copies agree, and the reads still
	// hold after that.
	eventually(t, 10*time.Second, func() error {
		_, err := digestsAgree(cluster)
		return err
	})
	if err := check(); err != nil {
		t.Fatal(err)
	}
}
