package main

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// testFlags is a fresh flag set shaped like serve's, per test.
type testFlags struct {
	fs        *pflag.FlagSet
	name      string
	replicas  int
	maxMemory sizeValue
	tags      tagsValue
	join      listValue
	http      string
	level     *choiceValue
	config    string
}

func newTestFlags() *testFlags {
	f := &testFlags{fs: pflag.NewFlagSet("serve", pflag.ContinueOnError), maxMemory: 1 << 30, level: newChoice("info", "debug", "info", "warn", "error")}
	f.fs.StringVar(&f.name, "name", "host", "")
	f.fs.IntVar(&f.replicas, "replicas", 2, "")
	f.fs.Var(&f.maxMemory, "max-memory", "")
	f.fs.Var(&f.tags, "tags", "")
	f.fs.Var(&f.join, "join", "")
	f.fs.StringVar(&f.http, "http", "127.0.0.1:7721", "")
	f.fs.Var(f.level, "log-level", "")
	f.fs.StringVar(&f.config, configFlag, "", "")
	return f
}

// envMap is a lookupEnvFunc over a map.
func envMap(m map[string]string) lookupEnvFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeYAML(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "roost.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{
		"max-memory":     "ROOST_MAX_MEMORY",
		"name":           "ROOST_NAME",
		"cluster-listen": "ROOST_CLUSTER_LISTEN",
	} {
		if got := envName(flag); got != want {
			t.Errorf("envName(%q) = %q, want %q", flag, got, want)
		}
	}
}

func TestPrecedence(t *testing.T) {
	yamlText := "name: from-file\nreplicas: 3\nmax-memory: 64MiB\nhttp: \"off\"\n"
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantName  string
		wantRepl  int
		wantMem   int64
		wantHTTP  string
		withFile  bool
		fileViaEn bool
	}{
		{name: "defaults", wantName: "host", wantRepl: 2, wantMem: 1 << 30, wantHTTP: "127.0.0.1:7721"},
		{name: "file beats default", withFile: true, wantName: "from-file", wantRepl: 3, wantMem: 64 << 20, wantHTTP: "off"},
		{name: "env beats file", withFile: true,
			env:      map[string]string{"ROOST_NAME": "from-env", "ROOST_MAX_MEMORY": "512MB"},
			wantName: "from-env", wantRepl: 3, wantMem: 512_000_000, wantHTTP: "off"},
		{name: "flag beats env and file", withFile: true,
			args:     []string{"--name", "from-flag", "--max-memory=1GiB"},
			env:      map[string]string{"ROOST_NAME": "from-env", "ROOST_MAX_MEMORY": "512MB", "ROOST_REPLICAS": "5"},
			wantName: "from-flag", wantRepl: 5, wantMem: 1 << 30, wantHTTP: "off"},
		{name: "empty env counts as unset", withFile: true,
			env:      map[string]string{"ROOST_NAME": ""},
			wantName: "from-file", wantRepl: 3, wantMem: 64 << 20, wantHTTP: "off"},
		{name: "config path from env", withFile: true, fileViaEn: true,
			wantName: "from-file", wantRepl: 3, wantMem: 64 << 20, wantHTTP: "off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFlags()
			env := maps.Clone(tt.env)
			if env == nil {
				env = map[string]string{}
			}
			args := tt.args
			if tt.withFile {
				path := writeYAML(t, yamlText)
				if tt.fileViaEn {
					env["ROOST_CONFIG"] = path
				} else {
					args = append(args, "--config", path)
				}
			}
			if err := f.fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			if err := bindEnvAndConfig(f.fs, envMap(env)); err != nil {
				t.Fatal(err)
			}
			if f.name != tt.wantName || f.replicas != tt.wantRepl || int64(f.maxMemory) != tt.wantMem || f.http != tt.wantHTTP {
				t.Errorf("got name=%q replicas=%d max-memory=%d http=%q, want %q %d %d %q",
					f.name, f.replicas, f.maxMemory, f.http, tt.wantName, tt.wantRepl, tt.wantMem, tt.wantHTTP)
			}
		})
	}
}

// TestPrecedenceRealEnv checks the binding through os.LookupEnv, as main uses it.
func TestPrecedenceRealEnv(t *testing.T) {
	t.Setenv("ROOST_REPLICAS", "4")
	f := newTestFlags()
	if err := f.fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := bindEnvAndConfig(f.fs, os.LookupEnv); err != nil {
		t.Fatal(err)
	}
	if f.replicas != 4 {
		t.Errorf("replicas = %d, want 4 from ROOST_REPLICAS", f.replicas)
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct {
		name, yaml, env, want string
	}{
		{"unknown key", "replicas: 2\nbogus: 1\n", "", `:2: unknown key "bogus"`},
		{"underscore hint", "max_memory: 1GiB\n", "", `unknown key "max_memory" (did you mean "max-memory"?)`},
		{"config inside config", "config: other.yaml\n", "", `unknown key "config"`},
		{"duplicate key", "name: a\nname: b\n", "", `key "name" given twice`},
		{"not a mapping", "- a\n- b\n", "", "want a mapping"},
		{"bad size", "max-memory: lots\n", "", `--max-memory: invalid value "lots"`},
		{"bad int", "replicas: two\n", "", `--replicas: invalid value "two"`},
		{"bad choice", "log-level: loud\n", "", `--log-level: invalid value "loud"`},
		{"nested value", "tags: {zone: {a: b}}\n", "", "tags: a mapping may hold only plain keys and values"},
		{"bad env", "", "ROOST_REPLICAS=x", `--replicas: invalid value "x" (from ROOST_REPLICAS)`},
		{"bad yaml", "name: [\n", "", "--config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFlags()
			path := writeYAML(t, tt.yaml)
			env := map[string]string{}
			if k, v, ok := strings.Cut(tt.env, "="); ok {
				env[k] = v
			}
			if err := f.fs.Parse([]string{"--config", path}); err != nil {
				t.Fatal(err)
			}
			err := bindEnvAndConfig(f.fs, envMap(env))
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			var ue usageError
			if !errors.As(err, &ue) {
				t.Errorf("error %q is not a usage error", err)
			}
		})
	}
}

func TestConfigFileMissing(t *testing.T) {
	f := newTestFlags()
	if err := f.fs.Parse([]string{"--config", filepath.Join(t.TempDir(), "nope.yaml")}); err != nil {
		t.Fatal(err)
	}
	err := bindEnvAndConfig(f.fs, envMap(nil))
	if err == nil || !strings.Contains(err.Error(), "--config") || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("error = %v, want one naming --config and the file", err)
	}
}

func TestConfigFileShapes(t *testing.T) {
	tests := []struct {
		name, yaml string
		wantTags   map[string]string
		wantJoin   []string
	}{
		{"tags as mapping", "tags: {zone: a, rack: r1}\n", map[string]string{"zone": "a", "rack": "r1"}, nil},
		{"tags as string", "tags: \"zone=a,rack=r1\"\n", map[string]string{"zone": "a", "rack": "r1"}, nil},
		{"tags as list", "tags: [zone=a, rack=r1]\n", map[string]string{"zone": "a", "rack": "r1"}, nil},
		{"join as list", "join: [nats://a:6222, nats://b:6222]\n", nil, []string{"nats://a:6222", "nats://b:6222"}},
		{"join as string", "join: nats://a:6222,nats://b:6222\n", nil, []string{"nats://a:6222", "nats://b:6222"}},
		{"empty file", "", nil, nil},
		{"comments only", "# nothing\n", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFlags()
			if err := f.fs.Parse([]string{"--config", writeYAML(t, tt.yaml)}); err != nil {
				t.Fatal(err)
			}
			if err := bindEnvAndConfig(f.fs, envMap(nil)); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(map[string]string(f.tags), tt.wantTags) && !(len(f.tags) == 0 && len(tt.wantTags) == 0) {
				t.Errorf("tags = %v, want %v", f.tags, tt.wantTags)
			}
			if strings.Join(f.join, " ") != strings.Join(tt.wantJoin, " ") {
				t.Errorf("join = %q, want %q", f.join, tt.wantJoin)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"64MiB", 64 << 20, false},
		{"1GiB", 1 << 30, false},
		{"512MB", 512_000_000, false},
		{"1.5GiB", 3 << 29, false},
		{"1048576", 1 << 20, false},
		{"0", 0, false},
		{" 2KiB ", 2048, false},
		{"64 MiB", 64 << 20, false},
		{"lots", 0, true},
		{"-1", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, bad=%v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestSizeValueString(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 1 << 30: "1.0GiB", 1 << 20: "1.0MiB", 1024: "1.0KiB", 100: "100B"} {
		v := sizeValue(in)
		if got := v.String(); got != want {
			t.Errorf("sizeValue(%d).String() = %q, want %q", in, got, want)
		}
		// What String prints must parse back to the same size.
		if back, err := parseSize(v.String()); err != nil || back != in {
			t.Errorf("parseSize(%q) = %d, %v; want %d", v.String(), back, err, in)
		}
	}
}

func TestParseTags(t *testing.T) {
	tests := []struct {
		in   string
		want map[string]string
		bad  bool
	}{
		{"zone=a", map[string]string{"zone": "a"}, false},
		{"zone=a,rack=r1", map[string]string{"zone": "a", "rack": "r1"}, false},
		{" zone = a , rack=r1 ,", map[string]string{"zone": "a", "rack": "r1"}, false},
		{"empty=", map[string]string{"empty": ""}, false},
		{"k=v=w", map[string]string{"k": "v=w"}, false},
		{"", map[string]string{}, false},
		{"zone", nil, true},
		{"=a", nil, true},
	}
	for _, tt := range tests {
		got, err := parseTags(tt.in)
		if (err != nil) != tt.bad || (!tt.bad && !maps.Equal(got, tt.want)) {
			t.Errorf("parseTags(%q) = %v, %v; want %v, bad=%v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestTagsFlagRepeats(t *testing.T) {
	f := newTestFlags()
	if err := f.fs.Parse([]string{"--tags", "zone=a", "--tags", "rack=r1,zone=b"}); err != nil {
		t.Fatal(err)
	}
	if want := (map[string]string{"zone": "b", "rack": "r1"}); !maps.Equal(map[string]string(f.tags), want) {
		t.Errorf("tags = %v, want %v", f.tags, want)
	}
	if got := f.tags.String(); got != "rack=r1,zone=b" {
		t.Errorf("String() = %q", got)
	}
}

func TestTidyFlagError(t *testing.T) {
	for in, want := range map[string]string{
		`invalid argument "x" for "--replicas" flag: strconv.ParseInt: parsing "x": invalid syntax`:           `invalid argument "x" for "--replicas" flag: not an integer`,
		`invalid argument "-1" for "--cas" flag: strconv.ParseUint: parsing "-1": invalid syntax`:             `invalid argument "-1" for "--cas" flag: not a whole number of 0 or more`,
		`invalid argument "9e99" for "--replicas" flag: strconv.ParseInt: parsing "9e99": value out of range`: `invalid argument "9e99" for "--replicas" flag: out of range`,
		`unknown flag: --bogus`: `unknown flag: --bogus`,
	} {
		if got := tidyFlagError(in); got != want {
			t.Errorf("tidyFlagError(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnvErrorMessage(t *testing.T) {
	f := newTestFlags()
	if err := f.fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	err := bindEnvAndConfig(f.fs, envMap(map[string]string{"ROOST_REPLICAS": "two"}))
	if want := `--replicas: invalid value "two" (from ROOST_REPLICAS): not an integer`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}
