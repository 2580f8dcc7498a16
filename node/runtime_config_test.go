package node

import (
	"encoding/json"
	"errors"
	"maps"
	"testing"
)

func rule(tag, node string, version uint64, settings string) ConfigRule {
	r := ConfigRule{ConfigScope: ConfigScope{Tag: tag, Node: node}, Version: version}
	if err := json.Unmarshal([]byte(settings), &r.Settings); err != nil {
		panic(err)
	}
	return r
}

// TestResolve is the precedence of the rules: node > tag > all, the later
// tag rule (higher version) wins, tags merge per key, tag rules match the
// node's own tags only.
func TestResolve(t *testing.T) {
	own := map[string]string{"zone": "a", "rack": "1"}
	tests := []struct {
		name     string
		rules    []ConfigRule
		values   map[string]string // setting -> raw value wanted
		from     map[string]string
		tags     map[string]string
		tagsFrom map[string]string
	}{
		{name: "no rules", tags: own},
		{
			name:   "all",
			rules:  []ConfigRule{rule("", "", 5, `{"max_memory":"64MiB","log_level":"debug"}`)},
			values: map[string]string{"max_memory": `"64MiB"`, "log_level": `"debug"`},
			from:   map[string]string{"max_memory": "rule all", "log_level": "rule all"},
			tags:   own,
		},
		{
			name: "tag beats all even when older; node beats tag",
			rules: []ConfigRule{
				rule("", "", 9, `{"max_memory":"1GiB","log_level":"warn"}`),
				rule("zone:a", "", 3, `{"max_memory":"64MiB","log_level":"debug"}`),
				rule("", "n1", 1, `{"log_level":"error"}`),
			},
			values: map[string]string{"max_memory": `"64MiB"`, "log_level": `"error"`},
			from:   map[string]string{"max_memory": "rule tag zone:a", "log_level": "rule node n1"},
			tags:   own,
		},
		{
			name: "later tag rule wins; other zones' and nodes' rules do not apply",
			rules: []ConfigRule{
				rule("rack:1", "", 7, `{"max_memory":"128MiB"}`),
				rule("zone:a", "", 4, `{"max_memory":"64MiB"}`),
				rule("zone:b", "", 8, `{"max_memory":"32MiB"}`),
				rule("", "n2", 9, `{"max_memory":"16MiB"}`),
			},
			values: map[string]string{"max_memory": `"128MiB"`},
			from:   map[string]string{"max_memory": "rule tag rack:1"},
			tags:   own,
		},
		{
			name: "tags merge per key; empty removes; a pushed tag does not select",
			rules: []ConfigRule{
				rule("", "", 1, `{"tags":{"tier":"hot","rack":""}}`),
				rule("zone:a", "", 2, `{"tags":{"tier":"warm","zone":"b"}}`),
				rule("zone:b", "", 3, `{"tags":{"selected":"yes"}}`),
				rule("", "n1", 0, `{"tags":{"extra":"1"}}`),
			},
			from:     map[string]string{"tags": "rule node n1"},
			tags:     map[string]string{"zone": "b", "tier": "warm", "extra": "1"},
			tagsFrom: map[string]string{"tier": "rule tag zone:a", "zone": "rule tag zone:a", "rack": "rule all", "extra": "rule node n1"},
		},
		{
			name:  "null and broken values are skipped",
			rules: []ConfigRule{rule("", "", 1, `{"max_memory":null,"log_level":"loud","future":1}`)},
			tags:  own,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := resolve(tt.rules, "n1", own)
			got := map[string]string{}
			for k, v := range res.values {
				got[k] = string(v)
			}
			if !maps.Equal(got, nonNil(tt.values)) {
				t.Errorf("values %v, want %v", got, tt.values)
			}
			if !maps.Equal(res.from, nonNil(tt.from)) {
				t.Errorf("from %v, want %v", res.from, tt.from)
			}
			if !maps.Equal(res.tags, tt.tags) {
				t.Errorf("tags %v, want %v", res.tags, tt.tags)
			}
			if !maps.Equal(res.tagFrom, nonNil(tt.tagsFrom)) {
				t.Errorf("tag sources %v, want %v", res.tagFrom, tt.tagsFrom)
			}
		})
	}
	if own["zone"] != "a" || len(own) != 2 {
		t.Fatalf("resolve changed the own tags: %v", own)
	}
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func TestCheckSetting(t *testing.T) {
	for _, tt := range []struct {
		name, raw string
		ok        bool
	}{
		{"max_memory", `"64MiB"`, true},
		{"max_memory", `67108864`, true},
		{"max_memory", `0`, true},
		{"max_memory", `-1`, false},
		{"max_memory", `"lots"`, false},
		{"max_memory", `null`, true},
		{"log_level", `"debug"`, true},
		{"log_level", `"WARN"`, true},
		{"log_level", `"loud"`, false},
		{"log_level", `3`, false},
		{"tags", `{"rack":"3"}`, true},
		{"tags", `{"":"x"}`, false},
		{"tags", `["a"]`, false},
		{"load_ttl", `"10m"`, true},
		{"load_ttl", `30`, true},
		{"load_ttl", `"-1s"`, false},
		{"negative_ttl", `0`, true},
		{"negative_ttl", `-5`, false},
		{"negative_ttl", `"soon"`, false},
		{"max-memory", `"1GiB"`, false},
		{"replicas", `3`, false},
	} {
		err := checkSetting(tt.name, json.RawMessage(tt.raw))
		if (err == nil) != tt.ok || err != nil && codeOf(err) != 400 {
			t.Errorf("checkSetting(%s, %s) = %v, want ok=%v", tt.name, tt.raw, err, tt.ok)
		}
	}
}

func TestConfigScope(t *testing.T) {
	for _, tt := range []struct {
		s     ConfigScope
		key   string
		valid bool
	}{
		{ConfigScope{}, ReservedPrefix + "config/all", true},
		{ConfigScope{Tag: "zone:a"}, ReservedPrefix + "config/tag:zone:a", true},
		{ConfigScope{Node: "n1"}, ReservedPrefix + "config/node:n1", true},
		{ConfigScope{Tag: "zone:a", Node: "n1"}, "", false},
		{ConfigScope{Tag: "zone"}, "", false},
		{ConfigScope{Tag: ":a"}, "", false},
		{ConfigScope{Node: "a b"}, "", false},
	} {
		err := tt.s.check()
		if (err == nil) != tt.valid {
			t.Errorf("%+v: check %v, want valid=%v", tt.s, err, tt.valid)
		}
		var ae *apiError
		if err != nil && !errors.As(err, &ae) {
			t.Errorf("%+v: error %v is not an API error", tt.s, err)
		}
		if tt.valid && tt.s.key() != tt.key {
			t.Errorf("%+v: key %q, want %q", tt.s, tt.s.key(), tt.key)
		}
	}
}
