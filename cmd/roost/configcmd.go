package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

// `roost config get|set|unset`: the runtime config rules (docs/http.md,
// "Runtime config"), over roost.admin.config. (config.go is the serve
// flags' config file.)

// configScopeFlags select a rule: --tag k=v or --node NAME, or neither (all).
type configScopeFlags struct {
	tag  string
	node string
}

func (s *configScopeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.tag, "tag", "", "the rule of the nodes with this tag (k=v)")
	cmd.Flags().StringVar(&s.node, "node", "", "the rule of the node with this name")
}

// scope turns the flags into a node.ConfigScope: k=v becomes k:v.
func (s *configScopeFlags) scope() (node.ConfigScope, error) {
	if s.tag != "" && s.node != "" {
		return node.ConfigScope{}, usageErrorf("give --tag or --node, not both")
	}
	sc := node.ConfigScope{Node: s.node}
	if s.tag != "" {
		k, v, ok := strings.Cut(s.tag, "=")
		if !ok || k == "" {
			return sc, usageErrorf("--tag %q: want k=v", s.tag)
		}
		sc.Tag = k + ":" + v
	}
	return sc, nil
}

func (a *app) newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show, push and remove runtime settings by tag or node",
		Long: `Runtime settings that nodes apply while they run: max_memory, log_level
and tags. A rule sets some of them for all nodes, for the nodes with a tag
(--tag zone=a) or for one node (--node n1); it is kept in the cluster, so a
node that starts later with a matching tag applies it too. A node rule beats
tag rules, which beat the rule for all; among tag rules the one written last
wins; tags are merged.`,
		Example: `  roost config set --tag zone=a max_memory=64MiB
  roost config set --node n1 log_level=debug tags=tier=hot,rack=3
  roost config get
  roost config unset --tag zone=a max_memory`,
	}
	cmd.AddCommand(a.newConfigGetCmd(), a.newConfigSetCmd(), a.newConfigUnsetCmd())
	return cmd
}

func (a *app) newConfigGetCmd() *cobra.Command {
	f, s := &clientFlags{}, &configScopeFlags{}
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Show each node's runtime settings, where they came from, and the rules",
		Args:  noArgs,
	}
	addClientFlags(cmd, f, "print the reply: {rules, nodes}")
	s.add(cmd)
	cmd.Flags().Lookup("tag").Usage = "only the nodes with this tag (k=v)"
	cmd.Flags().Lookup("node").Usage = "only this node"
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, _ []string) error {
		sc, err := s.scope()
		if err != nil {
			return err
		}
		return a.configRequest(ctx, c, node.ConfigRequest{Op: "get", ConfigScope: sc}, f.json)
	})
	return cmd
}

func (a *app) newConfigSetCmd() *cobra.Command {
	f, s := &clientFlags{}, &configScopeFlags{}
	cmd := &cobra.Command{
		Use:   "set [--tag k=v | --node NAME] SETTING=VALUE...",
		Short: "Set runtime settings for all nodes, the nodes with a tag, or one node",
		Long: `Set settings in a rule: max_memory=64MiB (0 = unlimited),
log_level=debug|info|warn|error, tags=k=v,k2=v2 (merged into the nodes' tags;
k= removes k). The selected nodes apply them within a second; the command
waits up to 2 s for them and fails (exit status 1) when one has not, or
has refused a value (the rule is kept either way: remove it with unset).`,
		Args: cobra.MinimumNArgs(1),
	}
	addClientFlags(cmd, f, "print the reply: {rules, nodes, pending}")
	s.add(cmd)
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, args []string) error {
		sc, err := s.scope()
		if err != nil {
			return err
		}
		settings := map[string]json.RawMessage{}
		for _, arg := range args {
			name, value, ok := strings.Cut(arg, "=")
			if !ok || name == "" {
				return usageErrorf("%q: want SETTING=VALUE, like max_memory=64MiB", arg)
			}
			var v any = value
			if name == node.SettingTags {
				tags, err := parseTags(value)
				if err != nil {
					return usageErrorf("tags=%s: %v", value, err)
				}
				v = tags
			}
			settings[name], _ = json.Marshal(v)
		}
		return a.configRequest(ctx, c, node.ConfigRequest{Op: "set", ConfigScope: sc, Settings: settings}, f.json)
	})
	return cmd
}

func (a *app) newConfigUnsetCmd() *cobra.Command {
	f, s := &clientFlags{}, &configScopeFlags{}
	cmd := &cobra.Command{
		Use:   "unset [--tag k=v | --node NAME] [SETTING...]",
		Short: "Remove settings from a rule, or the whole rule",
		Long:  `Remove the named settings from the rule of the scope, or the whole rule when no setting is named. The nodes go back to their own values (flag, env, file, default) or to a weaker rule.`,
	}
	addClientFlags(cmd, f, "print the reply: {rules, nodes, pending}")
	s.add(cmd)
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, args []string) error {
		sc, err := s.scope()
		if err != nil {
			return err
		}
		return a.configRequest(ctx, c, node.ConfigRequest{Op: "unset", ConfigScope: sc, Unset: args}, f.json)
	})
	return cmd
}

// configRequest sends req and prints the reply.
func (a *app) configRequest(ctx context.Context, c *client.Client, req node.ConfigRequest, asJSON bool) error {
	data, _ := json.Marshal(req)
	raw, err := c.Config(ctx, data)
	if err != nil {
		return err
	}
	var reply node.ConfigReply
	if err := json.Unmarshal(raw, &reply); err != nil {
		return fmt.Errorf("unreadable config reply from the node: %w", err)
	}
	if asJSON {
		if _, err := fmt.Fprintf(a.stdout, "%s\n", raw); err != nil {
			return err
		}
	}
	// A change that a selected node has not applied is a failure for a
	// script that goes on as if it had: the rule is kept, and the node may
	// apply it later, but the command says so with its exit status (and,
	// as every failing command, prints no table).
	if err := configNotApplied(req, reply); err != nil || asJSON {
		return err
	}
	return printConfig(a.stdout, reply)
}

// configNotApplied is the error of a set or unset that a selected node has
// not applied, or refused.
func configNotApplied(req node.ConfigRequest, reply node.ConfigReply) error {
	if req.Op == "get" {
		return nil
	}
	var refused []string
	for _, nc := range reply.Nodes {
		for _, name := range slices.Sorted(maps.Keys(nc.Settings)) {
			if e := nc.Settings[name].Error; e != "" {
				refused = append(refused, nc.Node+": "+name+": "+e)
			}
		}
	}
	switch {
	case len(reply.Pending) > 0:
		return fmt.Errorf("the rule is stored, but %s had not applied it within 2 s", strings.Join(reply.Pending, ", "))
	case len(refused) > 0:
		return fmt.Errorf("the rule is stored, but nodes refused a value: %s", strings.Join(refused, "; "))
	}
	return nil
}

// printConfig writes the rules, then a line per node and setting.
func printConfig(w io.Writer, r node.ConfigReply) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tSETTINGS\tVERSION")
	for _, rule := range r.Rules {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(rule.Settings)) {
			parts = append(parts, k+"="+string(rule.Settings[k]))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\n", rule.ConfigScope, strings.Join(parts, " "), rule.Version)
	}
	if len(r.Rules) == 0 {
		fmt.Fprintln(tw, "(none)\t\t")
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "NODE\tSETTING\tVALUE\tSOURCE")
	for _, nc := range r.Nodes {
		if nc.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t%s\n", nc.Node, nc.Error)
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(nc.Settings)) {
			s := nc.Settings[name]
			value := fmt.Sprint(s.Value)
			if b, err := json.Marshal(s.Value); err == nil && name == node.SettingTags {
				value = string(b)
			}
			if name == node.SettingMaxMemory {
				if f, ok := s.Value.(float64); ok {
					value = ibytes(int64(f))
					if f == 0 {
						value = "unlimited"
					}
				}
			}
			src := s.Source
			if s.Error != "" {
				src += " (" + s.Error + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", nc.Node, name, value, src)
		}
	}
	if len(r.Pending) > 0 {
		fmt.Fprintf(tw, "\nnot applied within 2 s by: %s\n", strings.Join(r.Pending, ", "))
	}
	return tw.Flush()
}
