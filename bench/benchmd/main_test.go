package main

import (
	"strings"
	"testing"
	"time"

	"github.com/roostkv/roost/bench/harness"
)

func TestRenderAndReplace(t *testing.T) {
	report := func(echo, roost, kv, toEcho, toKV float64) *harness.Report {
		return &harness.Report{Rows: []harness.Row{
			{Name: harness.NameEcho, OpsPerSec: echo},
			{Name: harness.NameRoost, OpsPerSec: roost, RatioToEcho: toEcho, RatioToKV: toKV},
			{Name: harness.NameKV, OpsPerSec: kv},
		}}
	}
	results := [][]*harness.Report{
		{report(52813, 37806, 32952, 0.75, 1.2), report(45962, 34123, 29157, 0.74, 1.2), report(50940, 38942, 33820, 0.76, 1.12)},
		{report(1000, 900, 0, 0.9, 0)}, // no KV row figures
		{report(2000, 2500, 1500, 1.26, 1.66), report(2100, 2400, 1400, 1.14, 1.71)},
	}
	table := render(results, "header")
	for _, want := range []string{
		"| get, text API | 52 813 / 45 962 / 50 940 | 37 806 / 34 123 / 38 942 | 32 952 / 29 157 / 33 820 | 0.75 / 0.74 / 0.76 (**0.75**) | 1.20 / 1.20 / 1.12 (**1.20**) |",
		"| set, text API | 1 000 | 900 | – | 0.90 | – |",
		"| 1.26 / 1.14 (**1.20**) | 1.66 / 1.71 (**1.69**) |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}

	doc := "# B\n\nbefore\n" + beginMarker + "\nold table\n" + endMarker + "\nafter\n"
	got, err := replaceSection(doc, table)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "old table") || !strings.Contains(got, "before\n"+beginMarker+"\nheader") || !strings.HasSuffix(got, endMarker+"\nafter\n") {
		t.Errorf("replaced document:\n%s", got)
	}
	if _, err := replaceSection("no markers", table); err == nil {
		t.Error("a document without markers was accepted")
	}
	if h := header(3, 6*time.Second, 2*time.Second); !strings.Contains(h, "3 runs per workload, each 6s per target in rounds of 2s") {
		t.Errorf("header = %q", h)
	}
}
