package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/node"
)

// TestZoneLoss runs six `roost serve` processes in three zones (--tags
// zone=a|b|c, two nodes each) with --placement-tag zone and R=2: every
// node's table has each partition's two owners in two zones, and killing
// both nodes of zone b at once (SIGKILL, with ack=all writes in flight)
// loses no acknowledged write. Without --placement-tag about one partition
// in fifteen has both owners in zone b, and the loss check fails:
// ROOST_TEST_NO_PLACEMENT=1 runs it so (skipping the table check), to show
// that it can.
func TestZoneLoss(t *testing.T) {
	// Not parallel: kill -9 of a zone, timed against heartbeats.
	if testing.Short() {
		t.Skip("kills processes")
	}
	args := []string{"--replicas", "2", "--placement-tag", "zone"}
	noPlacement := os.Getenv("ROOST_TEST_NO_PLACEMENT") != ""
	if noPlacement {
		args = []string{"--replicas", "2"}
	}
	c := newProcCluster(t, procClusterOptions{Size: 6, Args: args})
	zone := map[string]string{"n1": "a", "n2": "a", "n3": "b", "n4": "b", "n5": "c", "n6": "c"}
	for name, z := range zone {
		c.extra[name] = []string{"--tags", "zone=" + z}
	}
	for _, name := range c.names {
		c.launch(name)
	}
	c.waitFormed(30 * time.Second)

	// Every node computes the same table, with no partition's owners in one zone.
	var first string
	for _, name := range c.names {
		if noPlacement {
			break
		}
		tr := tableOfURL(t, c.url(name))
		for p, owners := range tr.Owners {
			if len(owners) != 2 || zone[owners[0]] == zone[owners[1]] {
				t.Errorf("%s: partition %d owners %v, zones %s and %s", name, p, owners, zone[owners[0]], zone[owners[len(owners)-1]])
			}
		}
		if pl := tr.Placement; pl == nil || !pl.Spread || len(pl.Zones) != 3 || pl.Tag != "zone" {
			t.Errorf("%s: placement %+v, want spread over 3 zones by tag zone", name, pl)
		}
		if s := fmt.Sprint(tr.Owners); first == "" {
			first = s
		} else if s != first {
			t.Errorf("%s computes another table than n1", name)
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	h := newHistory()
	conns := map[string]*nats.Conn{}
	for _, name := range c.names {
		conns[name] = dialURL(t, c.url(name))
	}
	// writeKeys sets prefix.from..prefix.(to-1) with ack=all, 8 at a time,
	// round robin over the nodes via, and returns how many were acked.
	writeKeys := func(prefix string, n int, via ...string) int {
		var acked atomic.Int64
		var wg sync.WaitGroup
		next := make(chan int)
		for w := range 8 {
			nc := conns[via[w%len(via)]]
			wg.Go(func() {
				for i := range next {
					key := fmt.Sprintf("%s.%d", prefix, i)
					if h.set(nc, key, key, faultWriteTimeout).acked {
						acked.Add(1)
					}
				}
			})
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
		return int(acked.Load())
	}
	if n := writeKeys("before", 2000, c.names...); n != 2000 {
		t.Fatalf("only %d of 2000 writes acked on a healthy cluster: %s", n, h.summary())
	}

	// Zone b dies while writes go on through the other zones.
	done := make(chan int)
	go func() { done <- writeKeys("during", 1000, "n1", "n2", "n5", "n6") }()
	c.kill("n3")
	c.kill("n4")
	during := <-done
	t.Logf("zone b killed; %d of 1000 writes during the kill acked; %s", during, h.summary())

	c.waitStatus("n1", "n3", "dead", 10*time.Second)
	c.waitStatus("n1", "n4", "dead", 10*time.Second)
	c.waitFormed(15 * time.Second)
	h.waitAllRight(t, c, []string{"n1", "n5"}, 15*time.Second)
}

// tableOfURL asks the node at url for the partition table it routes by.
func tableOfURL(t *testing.T, url string) node.TableReply {
	t.Helper()
	nc := dialURL(t, url)
	defer nc.Close()
	resp, err := nc.Request("roost.admin.table", nil, 2*time.Second)
	if err != nil {
		t.Fatalf("table of %s: %v", url, err)
	}
	var tr node.TableReply
	if err := json.Unmarshal(resp.Data, &tr); err != nil {
		t.Fatalf("table of %s: %v", url, err)
	}
	return tr
}

// TestPlacementReportsUnspread: three in-process nodes with
// --placement-tag zone, all in zone a, cannot spread R=2 owners, and every
// surface says so: the table, GET /v1/roost/partitions, the status, and the
// dashboard (a banner naming the partitions, in Chromium when installed). A
// pushed tag moving n3 to zone b (PUT /v1/roost/config?node=n3) lets every
// partition spread: every node agrees, the banner goes and the summary says
// the owners are spread.
func TestPlacementReportsUnspread(t *testing.T) {
	t.Parallel()
	skipInRaceStep(t, "zone placement is pure (partition.ComputeZoned, tested in its package); the table change is raced by TestRebalanceAddNodeNoLoss")
	nodes := startCluster(t, 3, func(i int, c *node.Config) {
		c.PlacementTag = "zone"
		c.Tags = map[string]string{"zone": "a"}
	})
	tr := nodes[0].Table()
	if pl := tr.Placement; pl == nil || pl.Spread || len(pl.Unspread) != tr.Partitions || len(pl.Zones["a"]) != 3 {
		t.Fatalf("one zone: placement %+v, want every partition unspread", pl)
	}
	code, body := nodeDo(t, nodes[1], http.MethodGet, "/v1/roost/partitions", "")
	var reply node.TableReply
	if err := json.Unmarshal(body, &reply); code != 200 || err != nil || reply.Placement == nil || reply.Placement.Spread {
		t.Fatalf("GET /v1/roost/partitions: %d %s", code, body[:min(len(body), 200)])
	}
	if pl := nodes[2].Status().Cluster.Placement; pl == nil || len(pl.Unspread) != tr.Partitions {
		t.Fatalf("status placement %+v", pl)
	}
	page := openDashboard(t, nodes[0])
	page.waitFor("a banner of 271 unspread partitions", func(st dashboardPlacement) bool {
		return strings.Contains(st.Banner, "271 partitions could not be spread over distinct zone values") && strings.Contains(st.Banner, "Partitions 0, 1, 2")
	})

	if code, body := nodeDo(t, nodes[0], http.MethodPut, "/v1/roost/config?node=n3", `{"tags":{"zone":"b"}}`); code != 200 {
		t.Fatalf("push zone b to n3: %d %s", code, body)
	}
	eventually(t, 5*time.Second, func() error {
		var first string
		for _, n := range nodes {
			tr := n.Table()
			if pl := tr.Placement; pl == nil || !pl.Spread || len(pl.Zones) != 2 {
				return fmt.Errorf("%s: placement %+v", n.Name(), pl)
			}
			if s := fmt.Sprint(tr.Owners); first == "" {
				first = s
			} else if s != first {
				return fmt.Errorf("%s computes another table", n.Name())
			}
			for p, o := range tr.Owners {
				if !slices.Contains(o, "n3") {
					return fmt.Errorf("%s: partition %d owners %v: not spread over zone b", n.Name(), p, o)
				}
			}
		}
		return nil
	})
	page.waitFor("no banner, spread in the summary", func(st dashboardPlacement) bool {
		return st.Banner == "" && strings.Contains(st.Summary, "spread by zone over 2 zones")
	})
}

// dashboardPlacement is what the dashboard shows of the placement.
type dashboardPlacement struct{ Banner, Summary string }

// dashboard is the dashboard of a node open in Chromium; nil ctx when no
// browser is installed (then waitFor does nothing).
type dashboard struct {
	t   *testing.T
	ctx context.Context
}

// openDashboard loads n's dashboard (no token) in a headless Chromium. With
// no Chromium it fails under ROOST_REQUIRE_BROWSER (CI), else the page
// checks are skipped with a log line.
func openDashboard(t *testing.T, n *node.Node) *dashboard {
	t.Helper()
	browser := chromiumPath()
	if browser == "" {
		if os.Getenv("ROOST_REQUIRE_BROWSER") != "" {
			t.Fatal("no chromium binary found, and ROOST_REQUIRE_BROWSER is set")
		}
		t.Log("no chromium binary found (install it: apt-get install -y chromium): the dashboard's placement banner is not checked")
		return &dashboard{t: t}
	}
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	t.Cleanup(func() { cancel(); cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(ctx, chromedp.Navigate(n.HTTPURL()+"/ui/")); err != nil {
		t.Fatalf("loading the dashboard: %v", err)
	}
	return &dashboard{t: t, ctx: ctx}
}

// waitFor polls the page (it polls its node every second) until ok holds,
// for up to 20 s.
func (d *dashboard) waitFor(what string, ok func(dashboardPlacement) bool) {
	d.t.Helper()
	if d.ctx == nil {
		return
	}
	const readState = `({
		Banner: document.getElementById("placement").hidden ? "" : document.getElementById("placement").textContent,
		Summary: document.getElementById("summary").textContent,
	})`
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := chromedp.Run(d.ctx, chromedp.Evaluate[dashboardPlacement](readState))
		if err != nil {
			d.t.Fatalf("reading the page: %v", err)
		}
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("after 20s the page shows %+v; want %s", st, what)
		}
		time.Sleep(200 * time.Millisecond) // between reads of a page that changes every second
	}
}
