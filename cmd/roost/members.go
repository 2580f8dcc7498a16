package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

func (a *app) newMembersCmd() *cobra.Command {
	f := &clientFlags{}
	tag := &tagsValue{}
	var status string
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the cluster's members as the node the server URL reaches sees them",
		Long: `List every member of the cluster: name, status (alive, suspect, dead,
left), role, address, tags, the partitions it leads and copies, and when it
was last heard from. Filter with --tag k=v (repeatable, all must match) and
--status.`,
		Example: `  roost members
  roost members --status dead
  roost members --tag zone=a --json | jq '.[].name'`,
		Args: noArgs,
	}
	addClientFlags(cmd, f, "print an array of member objects")
	cmd.Flags().Var(tag, "tag", "only members with this tag k=v (repeatable)")
	cmd.Flags().StringVar(&status, "status", "", "only members with this status: alive, suspect, dead or left")
	var nodeName string
	cmd.Flags().StringVar(&nodeName, "node", "", "whose view to show (default: the node --server reaches)")
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, _ []string) error {
		switch status {
		case "", "alive", "suspect", "dead", "left":
		default:
			return usageError{fmt.Errorf("--status %q: want alive, suspect, dead or left", status)}
		}
		raw, err := c.MembersOf(ctx, nodeName)
		if err != nil {
			return err
		}
		var reply node.MembersReply
		if err := json.Unmarshal(raw, &reply); err != nil {
			return fmt.Errorf("unreadable members reply from the node: %w", err)
		}
		members := make([]node.MemberInfo, 0, len(reply.Members))
		for _, m := range reply.Members {
			if matches(m, *tag, status) {
				members = append(members, m)
			}
		}
		if f.json {
			out, err := json.MarshalIndent(members, "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "%s\n", out)
			return err
		}
		return printMembers(a.stdout, members, reply.Refused)
	})
	return cmd
}

// matches reports whether m has every tag of want and, when status is set,
// that status.
func matches(m node.MemberInfo, want tagsValue, status string) bool {
	if status != "" && string(m.Status) != status {
		return false
	}
	for k, v := range want {
		if m.Tags[k] != v {
			return false
		}
	}
	return true
}

func printMembers(w io.Writer, members []node.MemberInfo, refused []membership.Member) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tROLE\tADDR\tPARTITIONS\tTAGS\tLAST SEEN")
	for _, m := range members {
		tags := tagsValue(m.Tags)
		seen := "now"
		if !m.Self {
			seen = time.Since(m.LastSeen).Round(100*time.Millisecond).String() + " ago"
		}
		name := m.Name
		if m.Self {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d+%d\t%s\t%s\n", name, m.Status, m.Role, m.Addr,
			m.Partitions.Primary, m.Partitions.Replica, orDash(tags.String()), seen)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range refused {
		fmt.Fprintf(w, "refused: %s (%s) runs with %d partitions\n", r.Name, r.Addr, r.Partitions)
	}
	if len(members) > 0 {
		fmt.Fprintln(w, strings.TrimSpace("* = the node that answered; PARTITIONS = led+copied"))
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
