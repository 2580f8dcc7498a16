package client

import (
	"context"
	"encoding/json"
	"fmt"
)

// StatusOf returns the status of the node named name (a member name, as
// `roost members` lists it), as the JSON it sends. "" means the node this
// client's connection reaches, when it is a Roost node's embedded server;
// otherwise any node answers, as with Status.
func (c *Client) StatusOf(ctx context.Context, name string) (json.RawMessage, error) {
	return c.nodeAdmin(ctx, name, "status", c.subj.Status())
}

// MembersOf returns the membership view of the node named name ("" as in
// StatusOf), as the JSON it sends.
func (c *Client) MembersOf(ctx context.Context, name string) (json.RawMessage, error) {
	return c.nodeAdmin(ctx, name, "members", c.subj.Members())
}

// nodeAdmin asks one node's admin subject: it resolves the node's ID through
// the partition table's ID map.
func (c *Client) nodeAdmin(ctx context.Context, name, verb, anyNode string) (json.RawMessage, error) {
	explicit := name != ""
	if !explicit {
		name = c.nc.ConnectedServerName()
	}
	raw, err := c.adminJSON(ctx, c.subj.Table())
	if err != nil {
		return nil, err
	}
	var table struct {
		IDs map[string]string `json:"ids"`
	}
	if err := json.Unmarshal(raw, &table); err != nil {
		return nil, fmt.Errorf("%w: table reply: %v", ErrProtocol, err)
	}
	id, ok := table.IDs[name]
	switch {
	case ok:
		return c.adminJSON(ctx, c.subj.NodeAdmin(id, verb))
	case explicit:
		return nil, fmt.Errorf("client: no live node named %q (see roost members)", name)
	default: // connected to a NATS server that is not a node's: any node
		return c.adminJSON(ctx, anyNode)
	}
}
