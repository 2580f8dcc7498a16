package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/node"
)

func (a *app) newMappingsCmd() *cobra.Command {
	partitions := node.DefaultPartitions
	prefix := wire.DefaultPrefix
	cmd := &cobra.Command{
		Use:   "mappings",
		Short: "Print the subject mappings an external NATS needs to route the text API to primaries",
		Long: `Print the "mappings" block to add to the configuration of every server of an
external NATS (roost serve --nats) for the account Roost and its clients
use: with it, the server sends each text-API request (roost.<op>.<key>, keys
of up to 4 tokens) straight to its key's primary, as the embedded servers
do by default (--text-route partition). Every node of a cluster holds its
partitions' routed subjects whatever its --text-route, so the mappings can
be added and reloaded while the nodes run. Use the cluster's --partitions
and --prefix. Without them everything works, one hop slower: see
docs/PROTOCOL.md, "Routing".`,
		Example: `  roost mappings >> nats-server.conf
  roost mappings --partitions 1021 --prefix cache`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if partitions < 1 || partitions > 65536 {
				return usageErrorf("--partitions: %d: need 1..65536", partitions)
			}
			ms := wire.NewSubjects(prefix).TextMappings(node.TextOps(), partitions)
			_, err := fmt.Fprint(cmd.OutOrStdout(), wire.MappingsConf(ms))
			return err
		},
	}
	cmd.Flags().IntVar(&partitions, "partitions", partitions, "the cluster's partition count (the nodes' --partitions)")
	cmd.Flags().StringVar(&prefix, "prefix", prefix, "the cluster's subject prefix (the nodes' --prefix)")
	return cmd
}
