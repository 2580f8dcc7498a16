package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/spf13/cobra"

	"github.com/roostkv/roost/actors/membership"
	"github.com/roostkv/roost/bus/wire"
	"github.com/roostkv/roost/client"
	"github.com/roostkv/roost/node"
)

// Loaders and hot keys from the command line: `roost get KEY --load`,
// `roost loaders` and `roost hotkeys` (docs/PROTOCOL.md, "Loaders").

// loadErr is the message of `roost get KEY --load` that failed: whether a
// loader was asked, and what it said. A miss at the key's primary asks any
// loader that listens, so a plain 404 means none does.
func loadErr(key, prefix string, err error) error {
	var e *client.Error
	errors.As(err, &e)
	switch {
	case errors.Is(err, client.ErrNotFound) && e != nil && strings.Contains(e.Message, node.LoaderSaidNotFound):
		return fmt.Errorf("key %q not found: its loader answered 404 (the nodes remember that for their --negative-ttl)", key)
	case errors.Is(err, client.ErrNotFound):
		return fmt.Errorf("key %q not found, and no loader listens for it: nothing subscribes to %s (see `roost loaders`)", key, wire.NewSubjects(prefix).Load(key))
	case errors.Is(err, client.ErrNotReady) && e != nil:
		if strings.HasPrefix(e.Message, fmt.Sprintf("key %q", key)) {
			return errors.New(e.Message) // the node's text already names the key
		}
		return fmt.Errorf("key %q: %s", key, e.Message)
	}
	return opErr(key, err)
}

// discoveryWait is how long `roost loaders` collects $SRV.INFO answers.
const discoveryWait = 500 * time.Millisecond

// loaderInfo is a loader service as `roost loaders` shows it.
type loaderInfo struct {
	Name     string            `json:"name"`
	ID       string            `json:"id"`
	Version  string            `json:"version"`
	Subjects []string          `json:"subjects"` // its endpoints' load subjects
	Queue    string            `json:"queue_group,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

func (a *app) newLoadersCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "loaders",
		Short: "List the loader services NATS knows",
		Long: `List the NATS micro services with an endpoint on the loader subjects
("<prefix>.load.…"), as every micro service answers $SRV.INFO: client.ServeLoader
registers one (named roost-loader). A loader that is a plain NATS subscriber, not
a micro service, works as well but is not listed: it does not answer $SRV.INFO.`,
		Example: `  roost loaders
  roost loaders --json`,
		Args: noArgs,
	}
	addClientFlags(cmd, f, "print an array of {name, id, version, subjects, queue_group, metadata}")
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, _ []string) error {
		loaders, err := discoverLoaders(ctx, c.Conn(), wire.NewSubjects(f.prefix).LoadPattern(""))
		if err != nil {
			return err
		}
		if f.json {
			return writeJSON(a.stdout, loaders)
		}
		return printLoaders(a.stdout, loaders)
	})
	return cmd
}

// discoverLoaders asks every micro service for its info ($SRV.INFO) and
// keeps those with an endpoint under the load subjects (all, a ">"
// pattern such as "roost.load.>").
func discoverLoaders(ctx context.Context, nc *nats.Conn, all string) ([]loaderInfo, error) {
	base := strings.TrimSuffix(all, ">")
	inbox := nats.NewInbox()
	replies := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest("$SRV.INFO", inbox, nil); err != nil {
		return nil, err
	}
	timer := time.NewTimer(discoveryWait)
	defer timer.Stop()
	loaders := []loaderInfo{}
	for {
		select {
		case m := <-replies:
			var info micro.Info
			if json.Unmarshal(m.Data, &info) != nil {
				continue // not a micro service's answer
			}
			li := loaderInfo{Name: info.Name, ID: info.ID, Version: info.Version, Metadata: info.Metadata}
			for _, ep := range info.Endpoints {
				if strings.HasPrefix(ep.Subject, base) {
					li.Subjects = append(li.Subjects, ep.Subject)
					li.Queue = ep.QueueGroup
				}
			}
			if len(li.Subjects) > 0 {
				loaders = append(loaders, li)
			}
		case <-timer.C:
			slices.SortFunc(loaders, func(a, b loaderInfo) int {
				return strings.Compare(a.Name+" "+a.ID, b.Name+" "+b.ID)
			})
			return loaders, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func printLoaders(w io.Writer, loaders []loaderInfo) error {
	if len(loaders) == 0 {
		_, err := fmt.Fprintln(w, "no loader service found (plain NATS subscribers on the load subjects are not listed)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tID\tVERSION\tSUBJECTS\tQUEUE")
	for _, l := range loaders {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Name, l.ID, l.Version, strings.Join(l.Subjects, ","), orDash(l.Queue))
	}
	return tw.Flush()
}

func (a *app) newHotKeysCmd() *cobra.Command {
	f := &clientFlags{}
	var top int
	cmd := &cobra.Command{
		Use:   "hotkeys",
		Short: "Show the keys each node reads most",
		Long: `Show each live node's hottest keys: the reads it served as their primary,
estimated from a sample (one read in 16) with the space-saving algorithm, the
older reads halved every minute. READS is the estimate, ±ERR how much of it
may belong to other keys.`,
		Example: `  roost hotkeys
  roost hotkeys -n 20 --json`,
		Args: noArgs,
	}
	addClientFlags(cmd, f, "print an array of each node's {name, id, sample_every, halve_seconds, keys: [{key, reads, error}]}")
	cmd.Flags().IntVarP(&top, "top", "n", 10, "keys per node (1..64)")
	cmd.RunE = a.withClient(f, func(ctx context.Context, c *client.Client, _ []string) error {
		if top < 1 || top > 64 {
			return usageErrorf("--top %d: want 1..64", top)
		}
		raw, err := c.MembersOf(ctx, "")
		if err != nil {
			return err
		}
		var members node.MembersReply
		if err := json.Unmarshal(raw, &members); err != nil {
			return fmt.Errorf("unreadable members reply from the node: %w", err)
		}
		lists := hotKeysOf(c.Conn(), wire.NewSubjects(f.prefix), members.Members, top, f.timeout)
		if f.json {
			return writeJSON(a.stdout, lists)
		}
		return printHotKeys(a.stdout, lists)
	})
	return cmd
}

// hotKeysOf asks every live member for its hot list, in parallel.
func hotKeysOf(nc *nats.Conn, subj wire.Subjects, members []node.MemberInfo, top int, timeout time.Duration) []node.NodeHotKeys {
	var lists []node.NodeHotKeys
	var mu sync.Mutex
	var wg sync.WaitGroup
	req, _ := json.Marshal(map[string]int{"n": top})
	for _, m := range members {
		if m.Status != membership.Alive && m.Status != membership.Suspect {
			continue
		}
		wg.Go(func() {
			hk := node.NodeHotKeys{Name: m.Name, ID: m.ID}
			msg, err := nc.Request(subj.NodeAdmin(m.ID, "hotkeys"), req, timeout)
			switch {
			case err != nil:
				hk.Error = err.Error()
			case json.Unmarshal(msg.Data, &hk) != nil:
				hk.Error = "malformed answer"
			}
			mu.Lock()
			lists = append(lists, hk)
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(lists, func(a, b node.NodeHotKeys) int { return strings.Compare(a.Name, b.Name) })
	return lists
}

func printHotKeys(w io.Writer, lists []node.NodeHotKeys) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKEY\tREADS\t±ERR")
	for _, l := range lists {
		switch {
		case l.Error != "":
			fmt.Fprintf(tw, "%s\t(%s)\t\t\n", l.Name, l.Error)
		case len(l.Keys) == 0:
			fmt.Fprintf(tw, "%s\t(no reads yet)\t\t\n", l.Name)
		}
		for _, k := range l.Keys {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", l.Name, k.Key, k.Reads, k.Error)
		}
	}
	return tw.Flush()
}
