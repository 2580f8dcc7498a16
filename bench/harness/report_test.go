package harness

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// sampleReport is a report as a --compare run makes it.
func sampleReport() *Report {
	settings := Settings{Workload: "get", GetRatio: 1, Dist: "uniform", Keys: 100_000, ValueSize: 100,
		Concurrency: 32, Duration: "6s", Round: "2s", Ack: "primary", Batching: "off", Path: "text", Nodes: 1,
		KeyPrefix: "bench-0a1b2c3d.", Cleanup: CleanupNone}
	row := func(name string, ops float64, p50 time.Duration, toEcho, toKV float64) Row {
		return Row{Name: name, Server: "nats://127.0.0.1:4222", OpsPerSec: ops, Rounds: []float64{ops, ops, ops},
			Ops: int64(ops * 6), P50: p50, P99: 4 * p50, P999: 10 * p50, Max: 20 * p50, RatioToEcho: toEcho, RatioToKV: toKV}
	}
	return &Report{
		Settings: settings,
		Rows: []Row{
			row(NameEcho, 90_000, 300*time.Microsecond, 0, 0),
			row(NameRoost, 63_000, 450*time.Microsecond, 0.7, 2.1),
			row(NameKV, 30_000, 900*time.Microsecond, 0.333, 0),
		},
		Notes: []string{"kv: somewhere <special> & quoted"},
	}
}

func TestJSONRowShape(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want one per row (3):\n%s", len(lines), buf.String())
	}
	numbers := []string{"ops_per_sec", "p50_us", "p99_us", "p999_us", "keys", "value_size", "concurrency", "nodes"}
	strs := []string{"name", "workload", "dist", "duration", "ack", "batching", "path", "key_prefix", "cleanup"}
	for i, line := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("line %d is not a JSON object: %v\n%s", i, err, line)
		}
		for _, k := range numbers {
			if _, ok := obj[k].(float64); !ok {
				t.Errorf("line %d: %q = %#v, want a number", i, k, obj[k])
			}
		}
		for _, k := range strs {
			if _, ok := obj[k].(string); !ok {
				t.Errorf("line %d: %q = %#v, want a string", i, k, obj[k])
			}
		}
		_, hasRatio := obj["ratio_to_echo"]
		if name := obj["name"]; hasRatio != (name != NameEcho) {
			t.Errorf("line %d (%v): ratio_to_echo present = %v, want it on every row but echo's", i, name, hasRatio)
		}
	}
	var roost map[string]any
	_ = json.Unmarshal([]byte(lines[1]), &roost)
	want := map[string]any{"name": "roost", "ops_per_sec": 63000.0, "p50_us": 450.0, "p99_us": 1800.0, "p999_us": 4500.0,
		"ratio_to_echo": 0.7, "ratio_to_kv": 2.1, "workload": "get", "keys": 100000.0, "duration": "6s"}
	for k, v := range want {
		if roost[k] != v {
			t.Errorf("roost row: %s = %#v, want %#v", k, roost[k], v)
		}
	}
}

func TestTable(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"target", "ops/s", "p50 µs", "p99 µs", "p999 µs", "× echo",
		"90 000", "63 000", "450.0", "1800.0", "4500.0", "0.70", "roost/echo 0.70, roost/kv 2.10 (ratios of the median ops/s above)", "note: kv: somewhere",
		`keys: 100 000 under "bench-0a1b2c3d.", in the nodes of this run only`} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestTableAndJSONSteadierRatios: the turn-by-turn and CPU ratios are in
// the table under the ratios, and in roost's JSON row, when measured.
func TestTableAndJSONSteadierRatios(t *testing.T) {
	rep := sampleReport()
	roost := rep.Row(NameRoost)
	roost.TurnRatioToEcho, roost.CPUPerOp, roost.CPURatioToEcho = 0.71, 23456*time.Nanosecond, 0.88
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"roost/echo turn by turn (median of the turns' ratios) 0.71",
		"CPU per operation (this process): roost 23.5 µs, echo's over roost's 0.88"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
	buf.Reset()
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var row map[string]any
	_ = json.Unmarshal([]byte(strings.Split(buf.String(), "\n")[1]), &row)
	for k, v := range map[string]float64{"turn_ratio_to_echo": 0.71, "cpu_us_per_op": 23.45, "cpu_ratio_to_echo": 0.88} {
		if row[k] != v {
			t.Errorf("roost's JSON: %s = %#v, want %g", k, row[k], v)
		}
	}
}

func TestMedian(t *testing.T) {
	if got := Median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median odd = %g", got)
	}
	if got := Median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median even = %g", got)
	}
	if got := Median(nil); got != 0 {
		t.Errorf("median empty = %g", got)
	}
}

// TestRatiosAgreeWithOpsPerSec: the × echo column is the ratio of the
// ops/s shown beside it, whatever the rounds did: here a slow second round
// halves both targets, and the median rounds give 48 000 / 60 000 = 0.80
// (the median of the per-round ratios would say 0.50).
func TestRatiosAgreeWithOpsPerSec(t *testing.T) {
	r := newRunner(DefaultConfig())
	r.targets = []*measured{
		{name: NameEcho, rounds: []float64{100_000, 40_000, 60_000}},
		{name: NameRoost, rounds: []float64{50_000, 20_000, 48_000}},
		{name: NameKV, rounds: []float64{30_000, 10_000, 24_000}},
	}
	rep := r.report()
	echo, roost, kv := rep.Row(NameEcho), rep.Row(NameRoost), rep.Row(NameKV)
	if roost.OpsPerSec != 48_000 || echo.OpsPerSec != 60_000 || kv.OpsPerSec != 24_000 {
		t.Fatalf("ops/s %g %g %g, want the median rounds", echo.OpsPerSec, roost.OpsPerSec, kv.OpsPerSec)
	}
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"roost × echo", roost.RatioToEcho, roost.OpsPerSec / echo.OpsPerSec},
		{"roost × kv", roost.RatioToKV, roost.OpsPerSec / kv.OpsPerSec},
		{"kv × echo", kv.RatioToEcho, kv.OpsPerSec / echo.OpsPerSec},
	} {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %g, want %g", c.what, c.got, c.want)
		}
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0.80", "roost/echo 0.80, roost/kv 2.00"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestTurnRatio(t *testing.T) {
	tests := []struct {
		a, b []float64
		want float64
	}{
		{[]float64{90, 40, 30}, []float64{100, 50, 60}, 0.8},        // 0.9, 0.8, 0.5
		{[]float64{90, 40, 30, 10}, []float64{100, 50, 60}, 0.8},    // a turn without its pair is left out
		{[]float64{90, 40}, []float64{100, 50}, 0},                  // too few turns
		{[]float64{90, 40, 30, 20}, []float64{100, 50, 0, 40}, 0.8}, // a turn of the baseline with nothing: left out
	}
	for _, tt := range tests {
		if got := turnRatio(tt.a, tt.b); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("turnRatio(%v, %v) = %g, want %g", tt.a, tt.b, got, tt.want)
		}
	}
}
