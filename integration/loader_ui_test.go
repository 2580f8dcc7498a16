package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"
)

// The dashboard shows each node's load counters and hot keys.
func TestUIDashboardLoadsAndHotKeys(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: a browser run; it runs in the full suite")
	}
	n := startNode(t, nil)
	nc := connect(t, n)
	if _, err := nc.Subscribe("roost.load.ui.>", func(m *nats.Msg) { _ = m.Respond([]byte("loaded")) }); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		wantCode(t, "load", request(t, nc, fmt.Sprintf("roost.get.ui.%d", i), nil), 200)
	}
	for range 500 {
		request(t, nc, "roost.get.ui.0", nil)
	}

	browser := chromiumPath()
	if browser == "" {
		if os.Getenv("ROOST_REQUIRE_BROWSER") != "" {
			t.Fatal("no chromium binary found, and ROOST_REQUIRE_BROWSER is set")
		}
		t.Skip("no chromium binary found (install it: apt-get install -y chromium)")
	}
	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+n.HTTPAddr()+"/ui/")); err != nil {
		t.Fatal(err)
	}
	type pageState struct {
		Loads string `json:"loads"` // the load row's cells
		Hot   string `json:"hot"`   // the first hot key's text
	}
	const readState = `({
		loads: Array.from(document.querySelectorAll("#loads tbody tr[data-loads] td")).map(td => td.textContent).join("|"),
		hot: (document.querySelector("#hotkeys li") || {textContent: ""}).textContent,
	})`
	var st pageState
	eventually(t, 10*time.Second, func() error {
		var err error
		if st, err = chromedp.Run(ctx, chromedp.Evaluate[pageState](readState)); err != nil {
			t.Fatalf("reading the page: %v", err)
		}
		// node | loaded | not found | failed | joined | negative hits | latency
		if !strings.HasPrefix(st.Loads, "n1|3|0|0|0|0|") || !strings.HasSuffix(st.Loads, " ms") || !strings.HasPrefix(st.Hot, "ui.0 ") {
			return fmt.Errorf("page shows loads %q, hot %q", st.Loads, st.Hot)
		}
		return nil
	})
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("ROOST_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	file := filepath.Join(dir, "dashboard-loads.png")
	if err := os.WriteFile(file, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot: %s", file)
}
