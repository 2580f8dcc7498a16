package client

// Waiting returns how many calls wait in c's batcher (not yet sent); 0 when
// batching is off.
func Waiting(c *Client) int {
	if c.b == nil {
		return 0
	}
	return c.b.queued()
}
