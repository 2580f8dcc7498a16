package client

import (
	"context"
	"encoding/json"
	"fmt"
)

// Config sends a runtime config request (a node.ConfigRequest as JSON:
// op get, set or unset, with an optional tag or node scope) to any node on
// roost.admin.config and returns its node.ConfigReply as JSON. Bad input
// comes back as an error with the node's reason (code 400); an unset of a
// rule that does not exist, 404.
func (c *Client) Config(ctx context.Context, req []byte) (json.RawMessage, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	m, err := c.request(ctx, c.subj.ConfigAdmin(), req)
	if err != nil {
		return nil, err
	}
	if !json.Valid(m.Data) {
		return nil, fmt.Errorf("%w: config reply is not JSON", ErrProtocol)
	}
	return json.RawMessage(m.Data), nil
}
