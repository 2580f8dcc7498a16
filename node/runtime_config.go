package node

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
)

// Runtime config pushed by tag (docs/http.md, "Runtime config"). A rule
// selects nodes — all of them, those with a tag k=v, or one node by name —
// and sets some of the settings that can change while a node runs
// (configSettings). Rules live in Roost itself, one reserved key per rule
// (reservedKey("config", ...)), replicated like any key, so that a node
// that starts later finds them. Every node follows the rules with a
// blocking query on their prefix: a change wakes it through the change
// feed, and it applies what now holds for it, within a second.
//
// Precedence, for each setting: a node rule beats tag rules, which beat the
// rule for all; among the tag rules that match, the one written last (the
// highest version) wins. Tags are merged rather than replaced: the node's
// own tags, then the all rule's, the tag rules' in order, the node rule's,
// later ones winning per tag key; a pushed tag with the value "" removes
// it. Tag rules match a node's own tags (--tags, or a re-tag by PUT
// /v1/roost/members/<node>/tags), never pushed ones, so a rule that sets
// the very tag it selects on does not flap.

// configArea is the reserved area of the rules (reserved.go).
const configArea = "config"

// configPrefix is the prefix of every rule's key.
var configPrefix = reservedKey(configArea, "")

// Timings of the rule follower.
const (
	configRefresh = 30 * time.Second       // a blocking read of the rules answers at least this often
	configRetry   = 500 * time.Millisecond // pause after a failed read (a peer just died, say)
	configApply   = 2 * time.Second        // how long applying may take (setting tags)
)

// The settings a rule may set.
const (
	SettingMaxMemory   = "max_memory"   // bytes as a number, or a size like "64MiB"; 0 = unlimited
	SettingLogLevel    = "log_level"    // debug, info, warn or error
	SettingTags        = "tags"         // an object of strings, merged into the node's tags
	SettingLoadTTL     = "load_ttl"     // a Go duration ("10m") or seconds: the TTL of a loaded value whose loader gave none
	SettingNegativeTTL = "negative_ttl" // a Go duration or seconds: how long a loader's 404 is remembered; 0 = off
)

// configSettings are the settings rules may set, in display order. To add
// one, give it a name here, a check in checkSetting, an apply step in
// applyRulesLocked and its value in localConfig.
var configSettings = []string{SettingMaxMemory, SettingLogLevel, SettingTags, SettingLoadTTL, SettingNegativeTTL}

// ConfigScope selects the nodes a rule applies to: all (both empty), those
// with tag Tag ("k:v"), or the node named Node.
type ConfigScope struct {
	Tag  string `json:"tag,omitempty"`
	Node string `json:"node,omitempty"`
}

// Levels of precedence of a scope.
const (
	levelAll = iota
	levelTag
	levelNode
)

func (s ConfigScope) level() int {
	switch {
	case s.Node != "":
		return levelNode
	case s.Tag != "":
		return levelTag
	}
	return levelAll
}

// String names the scope as sources show it: "all", "tag zone:a", "node n1".
func (s ConfigScope) String() string {
	switch s.level() {
	case levelNode:
		return "node " + s.Node
	case levelTag:
		return "tag " + s.Tag
	}
	return "all"
}

// key is the reserved key of the scope's rule.
func (s ConfigScope) key() string {
	switch s.level() {
	case levelNode:
		return reservedKey(configArea, "node:"+s.Node)
	case levelTag:
		return reservedKey(configArea, "tag:"+s.Tag)
	}
	return reservedKey(configArea, "all")
}

// check rejects a scope that is not all, k:v or a node name.
func (s ConfigScope) check() error {
	switch {
	case s.Tag != "" && s.Node != "":
		return errBadRequest("give ?tag=k:v or ?node=NAME, not both")
	case s.Node != "" && !nameRE.MatchString(s.Node):
		return errBadRequest("bad node name %q", s.Node)
	case s.Tag != "":
		k, _, ok := strings.Cut(s.Tag, ":")
		if !ok || k == "" {
			return errBadRequest("bad tag filter %q: want key:value", s.Tag)
		}
	}
	return nil
}

// matches reports whether a node named name with its own tags is selected.
func (s ConfigScope) matches(name string, tags map[string]string) bool {
	switch s.level() {
	case levelNode:
		return s.Node == name
	case levelTag:
		k, v, _ := strings.Cut(s.Tag, ":")
		got, ok := tags[k]
		return ok && got == v
	}
	return true
}

// ConfigRule is one stored rule: a scope and the settings it sets, each as
// the JSON value given. Version is its key's version (rules written later
// have higher versions); it is set when the rule is read, not stored.
type ConfigRule struct {
	ConfigScope
	Settings map[string]json.RawMessage `json:"settings"`
	Version  uint64                     `json:"version"`
}

// checkSetting validates a value of setting name; null is valid anywhere
// (it removes the setting from a rule).
func checkSetting(name string, raw json.RawMessage) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	var err error
	switch name {
	case SettingMaxMemory:
		_, err = parseMaxMemory(raw)
	case SettingLogLevel:
		_, err = parseLogLevel(raw)
	case SettingTags:
		_, err = parseTags(raw)
	case SettingLoadTTL, SettingNegativeTTL:
		_, err = parseDurationSetting(raw)
	default:
		return errBadRequest("unknown setting %q: runtime settings are %s", name, strings.Join(configSettings, ", "))
	}
	if err != nil {
		return errBadRequest("%s: %v", name, err)
	}
	return nil
}

// parseDurationSetting reads a duration: a string Roost-TTL takes ("10m",
// "30") or a number of seconds; it may not be negative.
func parseDurationSetting(raw json.RawMessage) (time.Duration, error) {
	var secs float64
	if json.Unmarshal(raw, &secs) == nil {
		if secs < 0 {
			return 0, fmt.Errorf("%v is negative", secs)
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		return 0, fmt.Errorf("want a duration such as \"10m\" or a number of seconds")
	}
	d, err := ParseTTL(str)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("%s is negative", str)
	}
	return d, nil
}

// parseMaxMemory reads a byte count: a number, or a string like "64MiB".
func parseMaxMemory(raw json.RawMessage) (int64, error) {
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		if n < 0 {
			return 0, fmt.Errorf("%d is negative (0 = unlimited)", n)
		}
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("want bytes or a size like \"64MiB\", got %s", raw)
	}
	b, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil || b > 1<<62 {
		return 0, fmt.Errorf("%q is not a size like 64MiB, 1GiB or 1048576", s)
	}
	return int64(b), nil
}

// parseLogLevel reads "debug", "info", "warn" or "error".
func parseLogLevel(raw json.RawMessage) (slog.Level, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("want one of \"debug\", \"info\", \"warn\", \"error\", got %s", raw)
	}
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q: want debug, info, warn or error", s)
}

// parseTags reads an object of strings with non-empty names.
func parseTags(raw json.RawMessage) (map[string]string, error) {
	var tags map[string]string
	if err := json.Unmarshal(raw, &tags); err != nil {
		return nil, fmt.Errorf(`want an object of strings like {"rack":"3"}, got %s`, raw)
	}
	if _, ok := tags[""]; ok {
		return nil, fmt.Errorf("a tag needs a non-empty name")
	}
	return tags, nil
}

// resolved is what the rules set for one node: per setting, the winning
// value and the rule it came from; tags merged, with each pushed tag's rule.
type resolved struct {
	values  map[string]json.RawMessage // setting -> pushed value; absent = the node's own
	from    map[string]string          // setting -> "rule <scope>"
	tags    map[string]string          // the node's own tags with the pushed ones merged in
	tagFrom map[string]string          // pushed tag -> "rule <scope>"
}

// resolve applies the precedence (see the top of this file) to the rules
// for the node named name with its own tags. It is pure.
func resolve(rules []ConfigRule, name string, own map[string]string) resolved {
	var mine []ConfigRule
	for _, r := range rules {
		if r.matches(name, own) {
			mine = append(mine, r)
		}
	}
	slices.SortStableFunc(mine, func(a, b ConfigRule) int {
		return cmp.Or(cmp.Compare(a.level(), b.level()), cmp.Compare(a.Version, b.Version))
	})
	res := resolved{values: map[string]json.RawMessage{}, from: map[string]string{}, tags: maps.Clone(own), tagFrom: map[string]string{}}
	if res.tags == nil {
		res.tags = map[string]string{}
	}
	for _, r := range mine {
		src := "rule " + r.String()
		for _, name := range slices.Sorted(maps.Keys(r.Settings)) {
			raw := r.Settings[name]
			if checkSetting(name, raw) != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
				continue // written by a newer node, or broken: not ours to apply
			}
			if name == SettingTags {
				tags, _ := parseTags(raw)
				for k, v := range tags {
					if v == "" {
						delete(res.tags, k)
					} else {
						res.tags[k] = v
					}
					res.tagFrom[k] = src
				}
				res.from[name] = src
				continue
			}
			res.values[name], res.from[name] = raw, src
		}
	}
	return res
}

// runtimeConfig is a node's state of the rules: what it applied, from
// what. Guarded by mu; the follower and re-tags change it.
type runtimeConfig struct {
	mu       sync.Mutex
	ownTags  map[string]string // --tags, or the last re-tag: what tag rules match
	tagsFrom string            // where ownTags came from
	baseLog  slog.Level        // the log level at start
	rules    []ConfigRule      // as last read
	index    uint64            // the index (highest version) of the rules applied
	applied  resolved          // what rules set when last applied
	errs     map[string]string // setting -> why its pushed value is not applied
	memFrom  string            // where the max_memory in force came from ("" = the node's own)

	kick    chan struct{} // a re-tag asks the follower to read the rules again
	waiting atomic.Int32  // 1 while the follower waits on the change feed (not a user's blocking query)
}

// SettingValue is a setting's effective value on one node and where it
// came from: "flag", "env ROOST_…", "file <path>", "default", "config" (set
// by the program that embeds the node), "re-tag", or "rule <scope>".
type SettingValue struct {
	Value   any               `json:"value"`
	Source  string            `json:"source"`
	Sources map[string]string `json:"sources,omitempty"` // tags: the source of each tag
	Error   string            `json:"error,omitempty"`   // a pushed value the node could not apply: it keeps Value
}

// NodeConfig is one node's runtime settings, as GET /v1/roost/config shows.
type NodeConfig struct {
	Node     string                  `json:"node"`
	Tags     map[string]string       `json:"tags"`  // its own tags, which tag rules match
	Index    uint64                  `json:"index"` // index of the rules it applied last
	Settings map[string]SettingValue `json:"settings,omitempty"`
	Error    string                  `json:"error,omitempty"` // it did not answer
}

// baseSource is where a setting's own value came from.
func (n *Node) baseSource(setting string) string {
	if s := n.cfg.Sources[setting]; s != "" {
		return s
	}
	return "config"
}

// initRuntimeConfig records the node's own values before any rule.
func (n *Node) initRuntimeConfig() {
	rc := &n.rc
	rc.ownTags = maps.Clone(n.cfg.Tags)
	rc.tagsFrom = n.baseSource(SettingTags)
	rc.baseLog = slog.LevelInfo
	if n.cfg.LogLevel != nil {
		rc.baseLog = n.cfg.LogLevel.Level()
	}
	rc.errs = map[string]string{}
	rc.kick = make(chan struct{}, 1)
}

// startConfig starts following the rules; the first read is done before
// it returns, so a node that starts applies the rules that match it before
// it reports ready.
func (n *Node) startConfig() error {
	if err := n.startConfigAPI(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.configStop = cancel
	n.configDone = make(chan struct{})
	first := make(chan struct{})
	go n.followRules(ctx, first)
	select {
	case <-first:
	case <-time.After(forwardTimeout):
		n.log.Warn("runtime config rules not read yet; they apply once they are")
	}
	return nil
}

// stopConfig stops the follower and waits for it.
func (n *Node) stopConfig() {
	if n.configStop != nil {
		n.configStop()
		<-n.configDone
	}
}

// followRules reads the rules that may apply to this node, applies them,
// and reads again when a rule changes (a waiter on their prefix, woken by
// the change feed), when the node's own tags change (kick), or every
// configRefresh, until ctx ends. first is closed after the first read,
// whether it worked or not.
//
// It reads the rules point by point, not as a listing of the prefix: the
// rule for all, this node's rule, and the rule of each of its own tags.
// A point read waits at the key's primary while it pulls the partition in,
// so a node that joins (and moves partitions) never reads a partial set
// of rules and drops a setting it should keep.
func (n *Node) followRules(ctx context.Context, first chan struct{}) {
	defer close(n.configDone)
	read := func() { // the first read is done
		if first != nil {
			close(first)
			first = nil
		}
	}
	defer read()
	for ctx.Err() == nil {
		w := n.feed.waiters.add(configPrefix, true) // before reading: no change goes unheard
		n.rc.waiting.Store(1)
		pause := configRefresh
		if rules, index, err := n.readMyRules(ctx); err != nil {
			if ctx.Err() == nil {
				n.log.Debug("runtime config: cannot read the rules yet", "err", err)
			}
			pause = configRetry
		} else {
			n.setRules(ctx, rules, index)
		}
		read()
		select {
		case <-w.wake: // a rule changed
		case <-n.rc.kick: // this node's own tags changed
		case <-time.After(pause):
		case <-n.feed.waiters.stopping():
		case <-ctx.Done():
		}
		n.rc.waiting.Store(0)
		n.feed.waiters.remove(w)
	}
}

// readMyRules reads the rules that may select this node: the rule for all,
// its node rule and one per own tag; index is the highest of their
// versions (deletes included).
func (n *Node) readMyRules(ctx context.Context) ([]ConfigRule, uint64, error) {
	n.rc.mu.Lock()
	scopes := []ConfigScope{{}, {Node: n.cfg.Name}}
	for k, v := range n.rc.ownTags {
		scopes = append(scopes, ConfigScope{Tag: k + ":" + v})
	}
	n.rc.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	var rules []ConfigRule
	var index uint64
	for _, sc := range scopes {
		resp, err := n.kvKey(ctx, sc.key(), 0)
		if err != nil {
			return nil, 0, err
		}
		index = max(index, resp.Index)
		for _, e := range resp.Entries {
			var r ConfigRule
			if err := json.Unmarshal(e.Value, &r); err != nil {
				n.log.Warn("runtime config: unreadable rule ignored", "rule", sc.String(), "err", err)
				continue
			}
			r.ConfigScope, r.Version = sc, e.Version
			rules = append(rules, r)
		}
	}
	return rules, index, nil
}

// localReservedKey is localKVKey for Roost's own keys: no user's hit or
// miss is counted, no loader is asked, no hot key observed.
func (n *Node) localReservedKey(key string, observe uint64) kvResponse {
	n.observe(observe)
	e, deleted, err := n.store.Peek(key)
	if err != nil {
		return kvResponse{Index: deleted}
	}
	return kvResponse{Entries: []kvEntry{kvEntryOf(&e, false)}, Index: e.Version}
}

// setRules records the rules read at index and applies them.
func (n *Node) setRules(ctx context.Context, rules []ConfigRule, index uint64) {
	n.rc.mu.Lock()
	defer n.rc.mu.Unlock()
	n.rc.rules = rules
	n.applyRulesLocked(ctx)
	n.rc.index = index
}

// retag replaces the node's own tags (PUT /v1/roost/members/<node>/tags)
// and applies the rules again, since tag rules match them. It returns the
// tags the node now beats: its own with the pushed ones merged in.
func (n *Node) retag(ctx context.Context, tags map[string]string) (map[string]string, error) {
	n.rc.mu.Lock()
	defer n.rc.mu.Unlock()
	old, oldFrom := n.rc.ownTags, n.rc.tagsFrom
	n.rc.ownTags, n.rc.tagsFrom = maps.Clone(tags), "re-tag"
	if err := n.applyRulesLocked(ctx); err != nil {
		n.rc.ownTags, n.rc.tagsFrom = old, oldFrom
		return nil, err
	}
	select { // other tags select other rules: read them
	case n.rc.kick <- struct{}{}:
	default:
	}
	return maps.Clone(n.rc.applied.tags), nil
}

// applyRulesLocked resolves the rules for this node and applies what
// changed. Its error is that of setting the tags (the node has left); the
// other settings' errors are recorded per setting.
func (n *Node) applyRulesLocked(ctx context.Context) error {
	rc := &n.rc
	res := resolve(rc.rules, n.cfg.Name, rc.ownTags)
	errs := map[string]string{}

	// max_memory: the store evicts down to a lower limit at once.
	want := n.cfg.MaxMemory
	if raw, ok := res.values[SettingMaxMemory]; ok {
		want, _ = parseMaxMemory(raw)
	}
	if have := n.store.Stats().MaxBytes; want != have {
		evicted, err := n.store.SetMaxMemory(want)
		if err == nil && want != 0 && n.store.ShardBudget() < n.cfg.MaxValue+int64(n.cfg.MaxKey) {
			n.log.Warn("runtime config: max_memory leaves a shard less room than --max-value; larger values will be refused", "max_memory", want)
		}
		switch {
		case err != nil:
			errs[SettingMaxMemory] = fmt.Sprintf("%s not applied: %v", cmp.Or(res.from[SettingMaxMemory], "own value"), err)
		default:
			rc.memFrom = res.from[SettingMaxMemory]
			n.log.Info("runtime config: max_memory changed", "from", have, "to", want, "source", cmp.Or(res.from[SettingMaxMemory], n.baseSource(SettingMaxMemory)), "evicted", evicted)
			if n.cfg.OnMaxMemory != nil {
				n.cfg.OnMaxMemory(want)
			}
		}
	}

	// log_level: through the handler's LevelVar, when the node has one.
	level := rc.baseLog
	if raw, ok := res.values[SettingLogLevel]; ok {
		level, _ = parseLogLevel(raw)
		if n.cfg.LogLevel == nil {
			errs[SettingLogLevel] = res.from[SettingLogLevel] + " not applied: this node's logger has a fixed level (Config.LogLevel is nil)"
		}
	}
	if lv := n.cfg.LogLevel; lv != nil && lv.Level() != level {
		lv.Set(level)
		n.log.Info("runtime config: log level changed", "to", level.String(), "source", cmp.Or(res.from[SettingLogLevel], n.baseSource(SettingLogLevel)))
	}

	// load_ttl and negative_ttl: read by the next load.
	loadTTL, negativeTTL := n.cfg.LoadTTL, n.cfg.NegativeTTL
	if raw, ok := res.values[SettingLoadTTL]; ok {
		loadTTL, _ = parseDurationSetting(raw)
	}
	if raw, ok := res.values[SettingNegativeTTL]; ok {
		negativeTTL, _ = parseDurationSetting(raw)
	}
	n.loads.setTTLs(loadTTL, negativeTTL)

	// tags: the node's own, with the pushed ones merged in, beaten at once.
	var err error
	if n.members != nil {
		if me, ok := n.members.View().Find(n.cfg.Name); !ok || !maps.Equal(me.Tags, res.tags) {
			tctx, cancel := context.WithTimeout(ctx, configApply)
			err = n.members.SetTags(tctx, maps.Clone(res.tags))
			cancel()
			if err != nil {
				errs[SettingTags] = fmt.Sprintf("%s not applied: %v", cmp.Or(res.from[SettingTags], "own tags"), err)
			}
		}
	}
	rc.applied, rc.errs = res, errs
	return err
}

// localConfig is this node's NodeConfig.
func (n *Node) localConfig() NodeConfig {
	rc := &n.rc
	rc.mu.Lock()
	defer rc.mu.Unlock()
	nc := NodeConfig{Node: n.cfg.Name, Tags: maps.Clone(rc.ownTags), Index: rc.index, Settings: map[string]SettingValue{}}
	if nc.Tags == nil {
		nc.Tags = map[string]string{}
	}
	res := rc.applied
	source := func(setting string) string { return cmp.Or(res.from[setting], n.baseSource(setting)) }

	st := n.store.Stats()
	mm := SettingValue{Value: st.MaxBytes, Source: source(SettingMaxMemory), Error: rc.errs[SettingMaxMemory]}
	if mm.Error != "" {
		mm.Source = cmp.Or(rc.memFrom, n.baseSource(SettingMaxMemory)) // the pushed value is not in force; the one before it is
	}
	nc.Settings[SettingMaxMemory] = mm

	level := rc.baseLog
	if n.cfg.LogLevel != nil {
		level = n.cfg.LogLevel.Level()
	}
	ll := SettingValue{Value: strings.ToLower(level.String()), Source: source(SettingLogLevel), Error: rc.errs[SettingLogLevel]}
	if ll.Error != "" {
		ll.Source = n.baseSource(SettingLogLevel)
	}
	nc.Settings[SettingLogLevel] = ll

	tags := SettingValue{Value: n.currentTags(), Source: rc.tagsFrom, Error: rc.errs[SettingTags]}
	if len(res.tagFrom) > 0 {
		tags.Source = rc.tagsFrom + ", " + res.from[SettingTags]
		tags.Sources = map[string]string{}
		for k := range res.tags {
			tags.Sources[k] = cmp.Or(res.tagFrom[k], rc.tagsFrom)
		}
		for k, src := range res.tagFrom {
			if _, kept := res.tags[k]; !kept {
				tags.Sources[k] = src + " (removed)"
			}
		}
	}
	nc.Settings[SettingTags] = tags

	loadTTL, negativeTTL := n.loads.ttls()
	nc.Settings[SettingLoadTTL] = SettingValue{Value: loadTTL.String(), Source: source(SettingLoadTTL)}
	nc.Settings[SettingNegativeTTL] = SettingValue{Value: negativeTTL.String(), Source: source(SettingNegativeTTL)}
	return nc
}
