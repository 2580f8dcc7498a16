package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/roostkv/roost/node"
)

// Where a flag's value comes from, strongest first:
//
//  1. the command line (--max-memory 64MiB);
//  2. the environment, ROOST_<FLAG> with '-' as '_' (ROOST_MAX_MEMORY=64MiB);
//     an empty variable counts as unset;
//  3. the YAML file named by --config (or ROOST_CONFIG), whose keys are flag
//     names (max-memory: 64MiB);
//  4. the flag's default.
//
// bindEnvAndConfig applies sources 2 and 3 to every flag the command line
// left unset; pflag has done source 1 and holds the defaults.

// configFlag names the flag that points at the YAML file.
const configFlag = "config"

// envPrefix starts the environment variable of every flag.
const envPrefix = "ROOST_"

// envName is the environment variable that sets flag name: ROOST_MAX_MEMORY
// for max-memory.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// lookupEnvFunc is os.LookupEnv, or a map in tests.
type lookupEnvFunc func(key string) (string, bool)

// bindEnvAndConfig sets every flag of fs that the command line did not set
// from its environment variable, or else from the YAML file given by the
// flag "config" when fs has one. Unknown keys in the file are an error
// naming the key. All errors are usage errors.
func bindEnvAndConfig(fs *pflag.FlagSet, lookupEnv lookupEnvFunc) error {
	env := func(name string) (string, bool) {
		v, ok := lookupEnv(envName(name))
		return v, ok && v != ""
	}
	// The file's path itself comes from the flag or the environment only.
	var file map[string]string
	var path string
	if f := fs.Lookup(configFlag); f != nil {
		path = f.Value.String()
		if !f.Changed {
			if v, ok := env(configFlag); ok {
				path = v
				if err := fs.Set(configFlag, v); err != nil {
					return usageErrorf("%s: %v", envName(configFlag), err)
				}
			}
		}
		if path != "" {
			var err error
			if file, err = readConfigFile(path, fs); err != nil {
				return usageError{err}
			}
		}
	}

	type assignment struct{ flag, value, source string }
	var todo []assignment
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == configFlag {
			return
		}
		if v, ok := env(f.Name); ok {
			todo = append(todo, assignment{f.Name, v, envName(f.Name)})
		} else if v, ok := file[f.Name]; ok {
			todo = append(todo, assignment{f.Name, v, path})
		}
	})
	for _, a := range todo {
		if err := setFrom(fs, a.flag, a.value, a.source); err != nil {
			return err
		}
	}
	return nil
}

// setFrom sets flag name to value, which came from source (an environment
// variable or the config file), with a usage error naming all three.
func setFrom(fs *pflag.FlagSet, name, value, source string) error {
	err := fs.Set(name, value)
	if err == nil {
		return nil
	}
	// pflag says `invalid argument "x" for "--name" flag: why`; keep the why.
	why := strings.TrimPrefix(err.Error(), fmt.Sprintf("invalid argument %q for %q flag: ", value, "--"+name))
	return usageErrorf("--%s: invalid value %q (from %s): %s", name, value, source, tidyFlagError(why))
}

// strconvErrRE matches what strconv says about a bad number.
var strconvErrRE = regexp.MustCompile(`strconv\.Parse(Int|Uint|Float|Bool): parsing "[^"]*": (invalid syntax|value out of range)`)

// tidyFlagError rewrites strconv's messages in a pflag error for people:
// `strconv.ParseInt: parsing "x": invalid syntax` becomes "not an integer".
func tidyFlagError(msg string) string {
	return strconvErrRE.ReplaceAllStringFunc(msg, func(m string) string {
		sub := strconvErrRE.FindStringSubmatch(m)
		if sub[2] == "value out of range" {
			return "out of range"
		}
		switch sub[1] {
		case "Int":
			return "not an integer"
		case "Uint":
			return "not a whole number of 0 or more"
		case "Float":
			return "not a number"
		}
		return "not true or false"
	})
}

// readConfigFile reads a YAML mapping of flag names to values and returns
// each value as the string the flag would take on the command line:
// scalars as written, lists joined with commas (join: [a, b] is "a,b"),
// mappings as k=v pairs (tags: {zone: a} is "zone=a").
func readConfigFile(path string, fs *pflag.FlagSet) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	return parseConfig(path, data, fs)
}

// parseConfig is readConfigFile after the read; path only names the file in
// errors.
func parseConfig(path string, data []byte, fs *pflag.FlagSet) (map[string]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	out := make(map[string]string)
	if doc.Kind == 0 || len(doc.Content) == 0 { // empty file
		return out, nil
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("--config %s: want a mapping of flag names to values, like \"max-memory: 64MiB\"", path)
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		key := k.Value
		where := fmt.Sprintf("--config %s:%d", path, k.Line)
		if key == configFlag || fs.Lookup(key) == nil {
			hint := ""
			if alt := strings.ReplaceAll(key, "_", "-"); alt != key && alt != configFlag && fs.Lookup(alt) != nil {
				hint = fmt.Sprintf(" (did you mean %q?)", alt)
			}
			return nil, fmt.Errorf("%s: unknown key %q%s", where, key, hint)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("%s: key %q given twice", where, key)
		}
		s, err := yamlFlagValue(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", where, key, err)
		}
		out[key] = s
	}
	return out, nil
}

// yamlFlagValue renders a YAML value as a command-line flag value.
func yamlFlagValue(n *yaml.Node) (string, error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "", nil
		}
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, item := range n.Content {
			if item.Kind != yaml.ScalarNode {
				return "", errors.New("a list may hold only plain values")
			}
			parts = append(parts, item.Value)
		}
		return strings.Join(parts, ","), nil
	case yaml.MappingNode:
		parts := make([]string, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
				return "", errors.New("a mapping may hold only plain keys and values")
			}
			parts = append(parts, k.Value+"="+v.Value)
		}
		return strings.Join(parts, ","), nil
	}
	return "", errors.New("unsupported YAML value")
}

// sizeValue is a byte count flag that takes human sizes: 64MiB, 1GiB, 512MB
// (decimal), 1.5GB, or plain bytes.
type sizeValue int64

func (s *sizeValue) String() string {
	if *s == 0 {
		return "0"
	}
	return strings.ReplaceAll(humanize.IBytes(uint64(*s)), " ", "")
}

func (s *sizeValue) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeValue(n)
	return nil
}

func (s *sizeValue) Type() string { return "size" }

// parseSize reads a human size; see sizeValue.
func parseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return 0, errors.New("not a size like 64MiB, 1GiB, 512MB or 1048576")
	}
	if n > 1<<62 {
		return 0, errors.New("too large")
	}
	return int64(n), nil
}

// tagsValue is a k=v,k2=v2 flag. Repeating it on the command line adds tags.
type tagsValue map[string]string

func (t *tagsValue) String() string {
	keys := make([]string, 0, len(*t))
	for k := range *t {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + (*t)[k])
	}
	return b.String()
}

func (t *tagsValue) Set(v string) error {
	tags, err := parseTags(v)
	if err != nil {
		return err
	}
	if *t == nil {
		*t = make(tagsValue)
	}
	for k, val := range tags {
		(*t)[k] = val
	}
	return nil
}

func (t *tagsValue) Type() string { return "k=v,..." }

// parseTags reads "k=v,k2=v2"; spaces around items are ignored, empty items
// skipped. Every item needs a non-empty key and an '='.
func parseTags(s string) (map[string]string, error) {
	tags := make(map[string]string)
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", item)
		}
		tags[k] = strings.TrimSpace(v)
	}
	return tags, nil
}

// listValue is a comma-separated list flag (--join a,b). Repeating it on the
// command line adds items; spaces around items are ignored.
type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			*l = append(*l, item)
		}
	}
	return nil
}

func (l *listValue) Type() string { return "list" }

// choiceValue is a string flag restricted to a few values.
type choiceValue struct {
	value   string
	choices []string
}

func newChoice(def string, choices ...string) *choiceValue {
	return &choiceValue{value: def, choices: choices}
}

func (c *choiceValue) String() string { return c.value }

func (c *choiceValue) Set(v string) error {
	v = strings.ToLower(strings.TrimSpace(v))
	if !slices.Contains(c.choices, v) {
		return fmt.Errorf("want one of %s", strings.Join(c.choices, ", "))
	}
	c.value = v
	return nil
}

func (c *choiceValue) Type() string { return strings.Join(c.choices, "|") }

// ttlValue is a TTL flag: a Go duration (1.5s, 10m) or whole seconds (30),
// as the Roost-TTL header takes it. 0 means no expiry.
type ttlValue time.Duration

func (d *ttlValue) String() string {
	if *d == 0 {
		return "0"
	}
	return time.Duration(*d).String()
}

func (d *ttlValue) Set(v string) error {
	ttl, err := node.ParseTTL(v)
	if err != nil {
		return err
	}
	*d = ttlValue(ttl)
	return nil
}

func (d *ttlValue) Type() string { return "duration" }
