package node

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
)

// A step of a loadTable test: one call, and what it must answer.
type loadStep struct {
	at        time.Duration // time since the start
	do        string        // "miss", "miss-quiet" (no loader listens), "hit", "finish", "forget", "prune"
	key       string
	out       loadOutcome   // finish: how the load ended
	every     time.Duration // finish: Roost-Refresh
	want      missAction    // miss: the action
	wantStart bool          // hit: a refresh starts
	size      *int          // the table's size after the step; nil = not checked
}

func sz(n int) *int { return &n }

func TestLoadTable(t *testing.T) {
	const neg = 30 * time.Second
	tests := []struct {
		name  string
		steps []loadStep
	}{
		{"no loader, nothing known: a plain miss", []loadStep{
			{do: "miss-quiet", key: "a", want: missPlain, size: sz(0)},
		}},
		{"single flight: the first miss starts, the others join", []loadStep{
			{do: "miss", key: "a", want: missStart, size: sz(1)},
			{do: "miss", key: "a", want: missJoin, size: sz(1)},
			{do: "miss-quiet", key: "a", want: missJoin, size: sz(1)}, // the loader left meanwhile: the load in flight still answers
			{do: "miss", key: "b", want: missStart, size: sz(2)},
			{do: "finish", key: "a", out: loadedValue, size: sz(1)},
			{do: "miss", key: "a", want: missStart, size: sz(2)}, // expired or evicted later: a new load
		}},
		{"a 404 is remembered for the negative TTL", []loadStep{
			{do: "miss", key: "a", want: missStart},
			{do: "finish", key: "a", out: loadNotFound, size: sz(1)},
			{at: time.Second, do: "miss", key: "a", want: missNegative, size: sz(1)},
			{at: time.Second, do: "miss-quiet", key: "a", want: missNegative, size: sz(1)},
			{at: neg, do: "miss", key: "a", want: missStart, size: sz(1)}, // ended: asked again
		}},
		{"a set or delete forgets the 404", []loadStep{
			{do: "miss", key: "a", want: missStart},
			{do: "finish", key: "a", out: loadNotFound, size: sz(1)},
			{do: "forget", key: "a", size: sz(0)},
			{do: "miss", key: "a", want: missStart, size: sz(1)},
		}},
		{"failures and unanswered loads remember nothing", []loadStep{
			{do: "miss", key: "a", want: missStart},
			{do: "finish", key: "a", out: loadFailed, size: sz(0)},
			{do: "miss", key: "a", want: missStart},
			{do: "finish", key: "a", out: loadNoLoader, size: sz(0)},
			{do: "miss-quiet", key: "a", want: missPlain, size: sz(0)},
		}},
		{"refresh-ahead: due after its period, one reload at a time", []loadStep{
			{do: "miss", key: "a", want: missStart},
			{do: "finish", key: "a", out: loadedValue, every: 10 * time.Second, size: sz(1)},
			{at: 5 * time.Second, do: "hit", key: "a", wantStart: false, size: sz(1)},
			{at: 10 * time.Second, do: "hit", key: "a", wantStart: true, size: sz(2)},
			{at: 11 * time.Second, do: "hit", key: "a", wantStart: false, size: sz(2)}, // in flight
			{at: 11 * time.Second, do: "miss", key: "a", want: missJoin, size: sz(2)},  // expired meanwhile: wait for the reload
			{at: 12 * time.Second, do: "finish", key: "a", out: loadedValue, every: 10 * time.Second, size: sz(1)},
			{at: 15 * time.Second, do: "hit", key: "a", wantStart: false},
			{at: 22 * time.Second, do: "hit", key: "a", wantStart: true},
		}},
		{"a failed refresh keeps the value and tries again a period later", []loadStep{
			{do: "miss", key: "a", want: missStart},
			{do: "finish", key: "a", out: loadedValue, every: 10 * time.Second},
			{at: 10 * time.Second, do: "hit", key: "a", wantStart: true},
			{at: 11 * time.Second, do: "finish", key: "a", out: loadFailed, size: sz(1)},
			{at: 12 * time.Second, do: "hit", key: "a", wantStart: false},
			{at: 21 * time.Second, do: "hit", key: "a", wantStart: true},
		}},
		{"no refresh without Roost-Refresh; a set drops the schedule", []loadStep{
			{do: "miss", key: "a", want: missStart},
			{do: "finish", key: "a", out: loadedValue, size: sz(0)},
			{at: time.Hour, do: "hit", key: "a", wantStart: false},
			{do: "miss", key: "b", want: missStart},
			{do: "finish", key: "b", out: loadedValue, every: time.Second, size: sz(1)},
			{do: "forget", key: "b", size: sz(0)},
			{at: time.Hour, do: "hit", key: "b", wantStart: false},
		}},
		{"a skipped load records nothing", []loadStep{
			{do: "miss", key: "a", want: missStart},
			{do: "finish", key: "a", out: loadSkipped, size: sz(0)},
		}},
		{"prune drops ended negative entries", []loadStep{
			{do: "miss", key: "a", want: missStart},
			{do: "finish", key: "a", out: loadNotFound, size: sz(1)},
			{at: neg - time.Second, do: "prune", size: sz(1)},
			{at: neg, do: "prune", size: sz(0)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Unix(1_000_000, 0)
			tab := newLoadTable(neg)
			flights := map[string]*flight{}
			for i, s := range tt.steps {
				now := start.Add(s.at)
				switch s.do {
				case "miss", "miss-quiet":
					act, f := tab.miss(s.key, now, s.do == "miss")
					if act != s.want {
						t.Fatalf("step %d: miss(%s) = %d, want %d", i, s.key, act, s.want)
					}
					if (act == missStart || act == missJoin) != (f != nil) {
						t.Fatalf("step %d: action %d with flight %v", i, act, f)
					}
					if act == missStart {
						flights[s.key] = f
					}
					if act == missJoin && f != flights[s.key] {
						t.Fatalf("step %d: joined another flight than the one started", i)
					}
				case "hit":
					f := tab.hit(s.key, 42, now)
					if (f != nil) != s.wantStart {
						t.Fatalf("step %d: hit(%s) started a refresh: %v, want %v", i, s.key, f != nil, s.wantStart)
					}
					if f != nil {
						if !f.refresh || f.version != 42 {
							t.Fatalf("step %d: refresh flight %+v", i, f)
						}
						flights[s.key] = f
					}
				case "finish":
					var expires time.Time
					tab.finish(s.key, flights[s.key], s.out, s.every, expires, now)
				case "forget":
					tab.forget(s.key)
				case "prune":
					tab.prune(now)
				}
				if got := tab.size(); s.size != nil && got != *s.size {
					t.Fatalf("step %d (%s %s): size %d, want %d", i, s.do, s.key, got, *s.size)
				}
			}
		})
	}
}

func TestLoadTableNegativeOff(t *testing.T) {
	tab := newLoadTable(0)
	now := time.Unix(1_000_000, 0)
	_, f := tab.miss("a", now, true)
	tab.finish("a", f, loadNotFound, 0, time.Time{}, now)
	if act, _ := tab.miss("a", now, true); act != missStart {
		t.Fatalf("--negative-ttl 0 remembered a 404: action %d", act)
	}
}

func TestLoadTableRefreshEndsWithTheValue(t *testing.T) {
	tab := newLoadTable(time.Minute)
	now := time.Unix(1_000_000, 0)
	_, f := tab.miss("a", now, true)
	tab.finish("a", f, loadedValue, time.Second, now.Add(5*time.Second), now)
	if tab.hit("a", 1, now.Add(6*time.Second)) != nil || tab.size() != 0 {
		t.Fatalf("a refresh started after the value expired; size %d", tab.size())
	}
}

func TestParseLoaderReply(t *testing.T) {
	const maxValue = 10
	tests := []struct {
		name    string
		data    string
		headers map[string]string
		code    int // 0 = a value
		errHas  string
		want    loaded
	}{
		{"bare value takes the default TTL", "v", nil, 0, "", loaded{value: []byte("v"), ttl: time.Minute}},
		{"empty value", "", nil, 0, "", loaded{value: []byte{}, ttl: time.Minute}},
		{"headers", "v", map[string]string{"Roost-TTL": "30", "Roost-Flags": "9", "Roost-Refresh": "5s"}, 0, "", loaded{value: []byte("v"), ttl: 30 * time.Second, flags: 9, every: 5 * time.Second}},
		{"TTL 0 is no expiry", "v", map[string]string{"Roost-TTL": "0"}, 0, "", loaded{value: []byte("v")}},
		{"404", "", map[string]string{"Nats-Service-Error-Code": "404", "Nats-Service-Error": "nope"}, wire.CodeNotFound, "its loader answered 404", loaded{}},
		{"other error code", "", map[string]string{"Nats-Service-Error-Code": "500", "Nats-Service-Error": "db down"}, wire.CodeUnavailable, "db down", loaded{}},
		{"too large", "0123456789x", nil, wire.CodeUnavailable, "over the limit", loaded{}},
		{"bad TTL", "v", map[string]string{"Roost-TTL": "soon"}, wire.CodeUnavailable, "Roost-TTL", loaded{}},
		{"bad flags", "v", map[string]string{"Roost-Flags": "-1"}, wire.CodeUnavailable, "Roost-Flags", loaded{}},
		{"bad refresh", "v", map[string]string{"Roost-Refresh": "x"}, wire.CodeUnavailable, "Roost-Refresh", loaded{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := nats.NewMsg("_INBOX.x")
			m.Data = []byte(tt.data)
			if tt.data == "" {
				m.Data = nil
			}
			for k, v := range tt.headers {
				m.Header.Set(k, v)
			}
			got, err := parseLoaderReply("k", m, time.Minute, maxValue)
			if tt.code != 0 {
				if codeOf(err) != tt.code || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err = %v (code %d), want code %d with %q", err, codeOf(err), tt.code, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got.value) != string(tt.want.value) || got.value == nil || got.ttl != tt.want.ttl || got.flags != tt.want.flags || got.every != tt.want.every {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
