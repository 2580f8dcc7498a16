package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/bus/wire"
)

// The runtime config API (runtime_config.go has the rules): over HTTP,
// GET/PUT/DELETE /v1/roost/config?tag=k:v|node=NAME; over NATS,
// roost.admin.config (ConfigRequest in, ConfigReply out) for `roost
// config`; and each node's own settings on roost.n.<id>.admin.config.
// Also the bulk member operations by tag filter: PUT
// /v1/roost/members/tags?tag=k:v and PUT /v1/roost/members/force-leave?tag=k:v.

// adminConfig is the verb of a node's admin subject that answers its
// NodeConfig.
const adminConfig = "config"

// Limits of the config API.
const (
	maxConfigBody   = 64 << 10        // bytes of a PUT body
	configAskWait   = time.Second     // for each node's NodeConfig
	configSeenWait  = 2 * time.Second // for the matching nodes to apply a change
	configCASTries  = 8               // rounds of read-merge-write against concurrent writers of a rule
	configOpTimeout = 10 * time.Second
)

// ConfigRequest is a runtime config operation: the body of
// roost.admin.config, and what the HTTP routes turn into.
type ConfigRequest struct {
	Op string `json:"op"` // "get", "set" or "unset"
	ConfigScope
	Settings map[string]json.RawMessage `json:"settings,omitempty"` // set: settings to set (null removes one)
	Unset    []string                   `json:"unset,omitempty"`    // unset: settings to remove; none = the whole rule
}

// ConfigReply answers a ConfigRequest.
type ConfigReply struct {
	Rules   []ConfigRule `json:"rules"`             // get: every rule; set, unset: the rule now (none when removed)
	Nodes   []NodeConfig `json:"nodes"`             // the live nodes the scope selects (get without scope: all), by name
	Pending []string     `json:"pending,omitempty"` // set, unset: selected nodes that had not applied the change within 2 s
}

// configOp runs one runtime config operation.
func (n *Node) configOp(ctx context.Context, req ConfigRequest) (ConfigReply, error) {
	if err := req.ConfigScope.check(); err != nil {
		return ConfigReply{}, err
	}
	switch req.Op {
	case "get":
		rules, _, err := n.readRules(ctx)
		if err != nil {
			return ConfigReply{}, err
		}
		return ConfigReply{Rules: rules, Nodes: n.selectedConfigs(req.ConfigScope)}, nil
	case "set":
		if len(req.Settings) == 0 {
			return ConfigReply{}, errBadRequest(`no settings: give a JSON object like {"max_memory":"64MiB"}; runtime settings are %s`, strings.Join(configSettings, ", "))
		}
		for _, name := range slices.Sorted(maps.Keys(req.Settings)) {
			if err := checkSetting(name, req.Settings[name]); err != nil {
				return ConfigReply{}, err
			}
		}
		return n.updateRule(ctx, req.ConfigScope, func(s map[string]json.RawMessage) {
			for k, v := range req.Settings {
				if strings.TrimSpace(string(v)) == "null" {
					delete(s, k)
				} else {
					s[k] = v
				}
			}
		})
	case "unset":
		for _, name := range req.Unset {
			if !slices.Contains(configSettings, name) {
				return ConfigReply{}, errBadRequest("unknown setting %q: runtime settings are %s", name, strings.Join(configSettings, ", "))
			}
		}
		return n.updateRule(ctx, req.ConfigScope, func(s map[string]json.RawMessage) {
			if len(req.Unset) == 0 {
				clear(s)
			}
			for _, k := range req.Unset {
				delete(s, k)
			}
		})
	}
	return ConfigReply{}, errBadRequest("bad op %q: want get, set or unset", req.Op)
}

// readRules reads every rule, and the index of their prefix.
func (n *Node) readRules(ctx context.Context) ([]ConfigRule, uint64, error) {
	res, err := n.queryKV(ctx, kvQuery{key: configPrefix, prefix: true}, blocking{})
	if err != nil {
		return nil, 0, err
	}
	rules := []ConfigRule{}
	for _, e := range res.entries {
		var r ConfigRule
		if json.Unmarshal(e.Value, &r) == nil {
			r.Version = e.Version
			rules = append(rules, r)
		}
	}
	slices.SortFunc(rules, func(a, b ConfigRule) int { return strings.Compare(a.key(), b.key()) })
	return rules, res.index, nil
}

// updateRule changes the settings of scope's rule with edit, by
// read-merge-write conditional on the version read (a concurrent writer
// makes it read again), removes the rule when no setting is left, then
// waits up to configSeenWait for the selected nodes to apply the change.
func (n *Node) updateRule(ctx context.Context, scope ConfigScope, edit func(map[string]json.RawMessage)) (ConfigReply, error) {
	key := scope.key()
	var rule *ConfigRule
	var version uint64
	for try := 0; ; try++ {
		cur, err := n.kvKey(ctx, key, 0)
		if err != nil {
			return ConfigReply{}, err
		}
		settings := map[string]json.RawMessage{}
		var cas uint64
		if len(cur.Entries) == 1 {
			var old ConfigRule
			if json.Unmarshal(cur.Entries[0].Value, &old) == nil && old.Settings != nil {
				settings = old.Settings
			}
			cas = cur.Entries[0].Version
		}
		edit(settings)
		w := reservedWrite{key: key, cas: cas, checkCAS: true}
		rule = &ConfigRule{ConfigScope: scope, Settings: settings}
		switch {
		case len(settings) == 0 && cas == 0:
			return ConfigReply{}, &apiError{code: http.StatusNotFound, msg: fmt.Sprintf("no rule for %s", scope)}
		case len(settings) == 0:
			w.del, rule = true, nil
		default:
			w.value, _ = json.Marshal(rule)
		}
		err = n.writeReserved(ctx, w)
		if codeOf(err) == wire.CodeConflict && try < configCASTries {
			continue // another writer came between: merge again
		}
		if err != nil {
			return ConfigReply{}, err
		}
		after, err := n.kvKey(ctx, key, 0)
		if err != nil {
			return ConfigReply{}, err
		}
		version = after.Index
		if rule != nil && len(after.Entries) == 1 {
			rule.Version = after.Entries[0].Version
		}
		break
	}
	reply := ConfigReply{Rules: []ConfigRule{}}
	if rule != nil {
		reply.Rules = append(reply.Rules, *rule)
	}
	// The selected nodes apply it within a second: wait and show them.
	deadline := time.Now().Add(configSeenWait)
	for {
		reply.Nodes, reply.Pending = n.selectedConfigs(scope), nil
		for _, nc := range reply.Nodes {
			if nc.Error != "" || nc.Index < version {
				reply.Pending = append(reply.Pending, nc.Node)
			}
		}
		if len(reply.Pending) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return reply, nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// selectedConfigs asks every live member for its NodeConfig and returns
// those of the members scope selects (by their own tags), by name.
func (n *Node) selectedConfigs(scope ConfigScope) []NodeConfig {
	live := n.members.View().Live("")
	all := make([]NodeConfig, len(live))
	var wg sync.WaitGroup
	for i, m := range live {
		if m.Self {
			all[i] = n.localConfig()
			continue
		}
		wg.Go(func() { all[i] = n.askConfig(m) })
	}
	wg.Wait()
	out := []NodeConfig{}
	for _, nc := range all {
		if nc.Error != "" || scope.matches(nc.Node, nc.Tags) {
			out = append(out, nc)
		}
	}
	return out
}

// askConfig asks member m for its NodeConfig; a silent member has Error.
func (n *Node) askConfig(m membership.Member) NodeConfig {
	msg, err := n.bus.Conn().Request(n.subj.NodeAdmin(m.ID, adminConfig), nil, configAskWait)
	nc := NodeConfig{Node: m.Name, Tags: m.Tags}
	if err != nil {
		nc.Error = fmt.Sprintf("did not answer: %v", err)
		return nc
	}
	if err := json.Unmarshal(msg.Data, &nc); err != nil {
		nc.Error = fmt.Sprintf("malformed answer: %v", err)
	}
	return nc
}

// startConfigAPI subscribes to roost.admin.config (any node, one answers)
// and to this node's admin config subject.
func (n *Node) startConfigAPI() error {
	nc := n.bus.Conn()
	s1, err := nc.QueueSubscribe(n.subj.ConfigAdmin(), "config", func(msg *nats.Msg) {
		n.async.Go(func() { n.onConfigAdmin(msg) })
	})
	if err != nil {
		return fmt.Errorf("node: subscribe %s: %w", n.subj.ConfigAdmin(), err)
	}
	s2, err := nc.Subscribe(n.subj.NodeAdmin(n.id, adminConfig), func(msg *nats.Msg) {
		data, _ := json.Marshal(n.localConfig())
		_ = msg.Respond(data)
	})
	if err != nil {
		_ = s1.Unsubscribe()
		return fmt.Errorf("node: subscribe admin config: %w", err)
	}
	n.agentSubs = append(n.agentSubs, s1, s2) // ended by stopAgent
	return nc.Flush()
}

// onConfigAdmin answers a ConfigRequest on roost.admin.config.
func (n *Node) onConfigAdmin(msg *nats.Msg) {
	var req ConfigRequest
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		respondMsgError(msg, errBadRequest("malformed config request: %v", err))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), configOpTimeout)
	defer cancel()
	reply, err := n.configOp(ctx, req)
	if err != nil {
		respondMsgError(msg, err)
		return
	}
	data, _ := json.Marshal(reply)
	_ = msg.Respond(data)
}

// configScope reads ?tag=k:v and ?node=NAME.
func configScope(r *http.Request) ConfigScope {
	q := r.URL.Query()
	return ConfigScope{Tag: q.Get("tag"), Node: q.Get("node")}
}

// httpConfigGet answers GET /v1/roost/config.
func (n *Node) httpConfigGet(w http.ResponseWriter, r *http.Request) {
	n.httpConfigOp(w, r, ConfigRequest{Op: "get", ConfigScope: configScope(r)})
}

// httpConfigPut answers PUT /v1/roost/config: the body, a JSON object of
// settings, is merged into the scope's rule.
func (n *Node) httpConfigPut(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxConfigBody))
	if err != nil {
		http.Error(w, fmt.Sprintf("config body over %d bytes", maxConfigBody), http.StatusRequestEntityTooLarge)
		return
	}
	var settings map[string]json.RawMessage
	if err := json.Unmarshal(body, &settings); err != nil {
		http.Error(w, fmt.Sprintf(`the body must be a JSON object of settings, like {"max_memory":"64MiB"}: %v`, err), http.StatusBadRequest)
		return
	}
	n.httpConfigOp(w, r, ConfigRequest{Op: "set", ConfigScope: configScope(r), Settings: settings})
}

// httpConfigDelete answers DELETE /v1/roost/config: ?setting=a,b removes
// those settings from the scope's rule, none the whole rule.
func (n *Node) httpConfigDelete(w http.ResponseWriter, r *http.Request) {
	var unset []string
	for _, v := range r.URL.Query()["setting"] {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				unset = append(unset, s)
			}
		}
	}
	n.httpConfigOp(w, r, ConfigRequest{Op: "unset", ConfigScope: configScope(r), Unset: unset})
}

func (n *Node) httpConfigOp(w http.ResponseWriter, r *http.Request, req ConfigRequest) {
	ctx, cancel := context.WithTimeout(r.Context(), configOpTimeout)
	defer cancel()
	reply, err := n.configOp(ctx, req)
	if err != nil {
		httpError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// memberFilter reads ?tag=k:v (repeatable, all must match; "k" alone: the
// tag is set) for the bulk member operations; at least one is required.
func memberFilter(r *http.Request) (func(membership.Member) bool, error) {
	var fs [][3]string
	for _, v := range r.URL.Query()["tag"] {
		k, val, hasValue := strings.Cut(v, ":")
		if k == "" {
			return nil, errBadRequest("bad tag filter %q: want key:value or key", v)
		}
		check := "value" // "" = any value
		if !hasValue {
			check = ""
		}
		fs = append(fs, [3]string{k, val, check})
	}
	if len(fs) == 0 {
		return nil, errBadRequest("give ?tag=key:value: a bulk operation needs a filter")
	}
	return func(m membership.Member) bool {
		for _, f := range fs {
			v, ok := m.Tags[f[0]]
			if !ok || f[2] != "" && v != f[1] {
				return false
			}
		}
		return true
	}, nil
}

// BulkReply answers a bulk member operation: per selected member, done or why not.
type BulkReply struct {
	Done    []string          `json:"done"`    // members the operation applied to
	Skipped map[string]string `json:"skipped"` // member -> why not
}

// httpBulkTags answers PUT /v1/roost/members/tags?tag=k:v: the body, a
// JSON object of strings, replaces the own tags of every live member
// selected, as PUT /v1/roost/members/<node>/tags does for one.
func (n *Node) httpBulkTags(w http.ResponseWriter, r *http.Request) {
	match, err := memberFilter(r)
	if err != nil {
		httpError(w, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTagsBody))
	if err != nil {
		http.Error(w, fmt.Sprintf("tags body over %d bytes", maxTagsBody), http.StatusRequestEntityTooLarge)
		return
	}
	tags, err := parseTags(body)
	if err != nil {
		httpError(w, errBadRequest("%v", err))
		return
	}
	if tags == nil {
		tags = map[string]string{}
	}
	req, _ := json.Marshal(tags)
	reply := BulkReply{Done: []string{}, Skipped: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range n.members.View().Live("") {
		if !match(m) {
			continue
		}
		wg.Go(func() {
			why := ""
			msg, err := n.bus.Conn().Request(n.subj.NodeAdmin(m.ID, adminTags), req, tagsTimeout)
			var tr TagsReply
			switch {
			case err != nil:
				why = fmt.Sprintf("did not answer: %v", err)
			case json.Unmarshal(msg.Data, &tr) != nil:
				why = "malformed answer"
			case tr.Code != 0:
				why = tr.Error
			}
			mu.Lock()
			defer mu.Unlock()
			if why != "" {
				reply.Skipped[m.Name] = why
			} else {
				reply.Done = append(reply.Done, m.Name)
			}
		})
	}
	wg.Wait()
	slices.Sort(reply.Done)
	writeJSON(w, http.StatusOK, reply)
}

// httpBulkForceLeave answers PUT /v1/roost/members/force-leave?tag=k:v:
// every suspect or dead member selected is forced out, as PUT
// /v1/agent/force-leave/<node> does for one; live ones are skipped.
func (n *Node) httpBulkForceLeave(w http.ResponseWriter, r *http.Request) {
	match, err := memberFilter(r)
	if err != nil {
		httpError(w, err)
		return
	}
	view := n.members.View()
	reply := BulkReply{Done: []string{}, Skipped: map[string]string{}}
	for _, m := range view.Members {
		if !match(m) {
			continue
		}
		switch m.Status {
		case membership.Left:
			continue
		case membership.Alive:
			reply.Skipped[m.Name] = "alive: force-leave only ejects suspect or dead members"
			continue
		}
		want := map[string]bool{}
		for _, lm := range view.Live("") {
			if lm.Name != m.Name {
				want[lm.Name] = true
			}
		}
		acks, err := n.broadcastForceLeave(m.Name, want)
		switch a, ok := acks[n.cfg.Name]; {
		case err != nil:
			reply.Skipped[m.Name] = err.Error()
		case ok && a.Code != 0:
			reply.Skipped[m.Name] = a.Error
		default:
			reply.Done = append(reply.Done, m.Name)
		}
	}
	writeJSON(w, http.StatusOK, reply)
}
