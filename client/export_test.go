package client

// Waiting returns how many calls wait in c's batcher (not yet sent); 0 when
// batching is off.
func Waiting(c *Client) int {
	if c.b == nil {
		return 0
	}
	return c.b.queued()
}

// CutNearFeed makes c's near cache lose every change-feed message while on
// (the data path is untouched), as a network that drops them would.
func CutNearFeed(c *Client, on bool) { c.near.setCut(on) }
