package client

// Waiting returns how many calls wait in c's batcher queue (not yet sent), as
// of the batcher's last step; 0 when batching is off.
func Waiting(c *Client) int {
	if c.b == nil {
		return 0
	}
	return int(c.b.waiting.Load())
}
