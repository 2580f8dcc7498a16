package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/roostkv/roost/actors/replicator"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

func (a *app) newStatusCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the status of the node the server URL reaches (or --node)",
		Long: `Show who the node is, where it listens, and its store's figures: keys,
memory used and allowed, hits, misses, evictions, expirations and uptime.`,
		Example: `  roost status
  roost status --json | jq .store`,
		Args: noArgs,
	}
	addClientFlags(cmd, f, "print the node's status JSON as it answers it")
	var nodeName string
	var waitSafe bool
	cmd.Flags().StringVar(&nodeName, "node", "", "the member to ask (default: the node --server reaches)")
	cmd.Flags().BoolVar(&waitSafe, "wait-safe", false, "wait until every partition has its in-sync copies on live owners, the gate for a rolling restart; --timeout bounds the wait (default 60s with --wait-safe)")
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, _ []string) error {
		var raw []byte
		var err error
		if waitSafe {
			budget := defaultWaitSafe
			if cmd.Flags().Changed("timeout") {
				budget = f.timeout
			}
			raw, err = awaitSafe(ctx, c, nodeName, budget)
		} else {
			raw, err = c.StatusOf(ctx, nodeName)
		}
		if err != nil {
			return err
		}
		if f.json {
			_, err := fmt.Fprintf(a.stdout, "%s\n", raw)
			return err
		}
		var st node.Status
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("unreadable status from the node: %w", err)
		}
		return printStatus(a.stdout, &st)
	})
	return cmd
}

// defaultWaitSafe bounds --wait-safe when --timeout is not given.
const defaultWaitSafe = 60 * time.Second

// awaitSafe asks the node's status until it says every partition has its
// in-sync copies, and returns that status; after budget it fails with the
// count of partitions still under-replicated.
func awaitSafe(ctx context.Context, c *client.Client, nodeName string, budget time.Duration) ([]byte, error) {
	deadline := time.Now().Add(budget)
	var last *replicator.Safety
	for {
		raw, err := c.StatusOf(ctx, nodeName)
		if err == nil {
			var st node.Status
			if err := json.Unmarshal(raw, &st); err != nil {
				return nil, fmt.Errorf("unreadable status from the node: %w", err)
			}
			if s := st.Cluster.Safety; s != nil {
				if s.Safe() {
					return raw, nil
				}
				last = s
			}
		}
		if time.Now().After(deadline) {
			if last == nil {
				return nil, fmt.Errorf("not safe after %s: the node reported no replication state (last error: %v)", budget, err)
			}
			return nil, fmt.Errorf("not safe after %s: %d of %d partitions have fewer than %d in-sync copies (first: %v)", budget, last.UnderReplicated, last.Partitions, last.Want, last.Examples)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// printStatus writes the human summary of st.
func printStatus(w io.Writer, st *node.Status) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...))
	}
	s := st.Store
	row("name", "%s", st.Name)
	row("id", "%s", st.ID)
	row("version", "%s", st.Version)
	row("role", "%s", st.Role)
	if st.Datacenter != "" {
		row("datacenter", "%s", st.Datacenter)
	}
	if len(st.Tags) > 0 {
		var tags tagsValue = st.Tags
		row("tags", "%s", tags.String())
	}
	row("nats", "%s", st.NATS)
	if st.HTTP != "" {
		row("http", "http://%s", st.HTTP)
	} else {
		row("http", "off")
	}
	row("keys", "%d stored: %d in partitions it leads, %d copies of other primaries' keys", s.Keys, st.Cluster.Keys.Primary, st.Cluster.Keys.Replica)
	if s.MaxBytes > 0 {
		row("memory", "%s / %s (%.1f%%)", ibytes(s.Bytes), ibytes(s.MaxBytes), 100*float64(s.Bytes)/float64(s.MaxBytes))
	} else {
		row("memory", "%s / unlimited", ibytes(s.Bytes))
	}
	row("hits", "%d", s.Hits)
	row("misses", "%d", s.Misses)
	row("evictions", "%d", s.Evictions)
	row("expirations", "%d", s.Expirations)
	row("uptime", "%s", time.Duration(st.UptimeSeconds*float64(time.Second)).Round(time.Second))
	c := st.Cluster
	if c.ClusterAddr != "" {
		row("cluster", "%s (%d routes)", c.ClusterAddr, c.Routes)
	}
	row("view", "version %d: %s", c.View, membersByStatus(c.Members))
	row("servers", "%s", strings.Join(c.Servers, ", "))
	row("partitions", "primary of %d, replica of %d (of %d); %d owners per partition (--replicas %d)", len(c.PrimaryOf), len(c.ReplicaOf), st.Partitions, c.Replicas, st.Replicas)
	if len(c.Replication) > 0 {
		row("replication", "%s", replicationSummary(c.Replication))
	}
	if s := c.Safety; s != nil {
		if s.Safe() {
			row("safe", "yes: every partition has %d of %d copies in sync", s.Want, s.Want)
		} else {
			row("safe", "no: %d of %d partitions have fewer than %d in-sync copies", s.UnderReplicated, s.Partitions, s.Want)
		}
	}
	if pl := c.Placement; pl != nil {
		if pl.Spread {
			row("placement", "by tag %q over %d zones: every partition's owners in distinct zones", pl.Tag, len(pl.Zones))
		} else {
			row("placement", "by tag %q over %d zones: %d partitions NOT spread (fewer zones than owners); losing a zone may lose them", pl.Tag, len(pl.Zones), len(pl.Unspread))
		}
	}
	if len(c.Refused) > 0 {
		row("refused", "%s (another partition count or placement tag)", strings.Join(c.Refused, ", "))
	}
	return tw.Flush()
}

// replicationSummary writes the state of the partitions a node holds, like
// "90 primary, 181 replica; 2 syncing; lag 0 entries (max)"; `--json` has
// every partition.
func replicationSummary(parts []replicator.PartitionStatus) string {
	roles := map[string]int{}
	syncing := 0
	var lag uint64
	for _, p := range parts {
		roles[p.Role]++
		if !p.Ready {
			syncing++
		}
		lag = max(lag, p.Lag)
	}
	return fmt.Sprintf("%d primary, %d replica; %d syncing; lag %d entries (max)", roles["primary"], roles["replica"], syncing, lag)
}

// membersByStatus writes counts like "3 alive, 1 dead".
func membersByStatus(counts map[string]int) string {
	var parts []string
	for _, s := range []string{"alive", "suspect", "dead", "left"} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// ibytes is a byte count the way sizes are written on the command line: 64MiB.
func ibytes(n int64) string {
	if n < 0 {
		n = 0
	}
	return strings.ReplaceAll(humanize.IBytes(uint64(n)), " ", "")
}
