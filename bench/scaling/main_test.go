package main

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
)

func TestParseRedisCSV(t *testing.T) {
	out := `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","41152.26","0.734","0.144","0.663","1.191","2.063","7.351"
"GET","45045.04","0.658","0.128","0.599","1.031","1.759","4.975"
`
	got, err := parseRedisCSV([]byte(out), "get")
	if err != nil {
		t.Fatal(err)
	}
	if got.OpsPerSec != 45045.04 || got.P50Ms != 0.599 || got.P99Ms != 1.759 {
		t.Errorf("get = %+v", got)
	}
	if _, err := parseRedisCSV([]byte(out), "incr"); err == nil {
		t.Error("a test not in the output parsed")
	}
	if _, err := parseRedisCSV([]byte(`"test","rps"`+"\n"+`"GET","1"`+"\n"), "get"); err == nil {
		t.Error("output without latency columns parsed")
	}
	if _, err := parseRedisCSV([]byte(strings.Replace(out, "45045.04", "fast", 1)), "get"); err == nil {
		t.Error("a non-number rps parsed")
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\troost\nVmPeak:\t 2000 kB\nVmRSS:\t   123456 kB\nThreads:\t9\n"
	got, err := parseVmRSS(strings.NewReader(status))
	if err != nil || got != 123456<<10 {
		t.Errorf("parseVmRSS = %d, %v; want %d", got, err, 123456<<10)
	}
	if _, err := parseVmRSS(strings.NewReader("Name:\tx\n")); err == nil {
		t.Error("status without VmRSS parsed")
	}
	if _, err := parseVmRSS(strings.NewReader("VmRSS:\t12 MB\n")); err == nil {
		t.Error("VmRSS in another unit parsed")
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"+OK\r\n", "OK", false},
		{":42\r\n", "42", false},
		{"$5\r\nhello\r\n", "hello", false},
		{"$-1\r\n", "", false},
		{"-ERR wrong\r\n", "", true},
		{"*1\r\n", "", true},
	}
	for _, tt := range tests {
		got, err := readReply(bufio.NewReader(strings.NewReader(tt.in)))
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("readReply(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseInfo(t *testing.T) {
	got := parseInfo("# Memory\r\nused_memory:1024\r\nused_memory_rss:4096\r\n")
	if got["used_memory"] != "1024" || got["used_memory_rss"] != "4096" || len(got) != 2 {
		t.Errorf("parseInfo = %v", got)
	}
}

func TestRedisKeys(t *testing.T) {
	// The harness's key n and the loader's key n are one Redis key, the
	// one redis-benchmark -r picks.
	for _, n := range []int{0, 7, 4_999_999} {
		want := redisKey(n)
		if got := string(redisKeyOf(nil, keyPrefix+itoa(n))); got != want {
			t.Errorf("redisKeyOf(%d) = %q, want %q", n, got, want)
		}
	}
	if got := redisKey(12); got != "key:000000000012" {
		t.Errorf("redisKey(12) = %q", got)
	}
	if n := len(keyPrefix + itoa(4_999_999)); n != 16 {
		t.Errorf("the longest key of the 5M keyspace is %d bytes, want 16 as Redis's", n)
	}
}

func TestPoints(t *testing.T) {
	ps := points("value,keys,requesters", 5_000_000)
	if len(ps) != 13 {
		t.Fatalf("%d points, want 4+4+5", len(ps))
	}
	for _, p := range ps {
		if p.Axis != "value" && p.ValueSize != baseValue || p.Axis != "keys" && p.Keys != baseKeys && p.ValueSize == baseValue ||
			p.Axis != "requesters" && p.Concurrency != baseConc {
			t.Errorf("point %+v moves more than its axis", p)
		}
		if p.Keys*p.ValueSize > dataCap && p.Axis == "value" {
			t.Errorf("point %+v holds more than %d bytes of values", p, dataCap)
		}
	}
	if got := points("keys", 0); len(got) != 3 {
		t.Errorf("keys axis without the big keyspace: %d points, want 3", len(got))
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[int]string{100: "100 B", 4096: "4 KiB", 512 << 10: "512 KiB", 1 << 20: "1 MiB", 1000: "1000 B"} {
		if got := sizeName(in); got != want {
			t.Errorf("sizeName(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int]string{1000: "1k", 100_000: "100k", 5_000_000: "5M", 65536: "65536", 512: "512"} {
		if got := count(in); got != want {
			t.Errorf("count(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[float64]string{61234: "61.2k", 412: "412", 1.5e6: "1.5M", 0: "—"} {
		if got := ops(in); got != want {
			t.Errorf("ops(%g) = %q, want %q", in, got, want)
		}
	}
}
func itoa(n int) string { return strconv.Itoa(n) }
