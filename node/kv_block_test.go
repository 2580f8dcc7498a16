package node

import (
	"net/url"
	"testing"
	"time"
)

func TestParseBlockingWait(t *testing.T) {
	for _, tt := range []struct {
		query    string
		min, max time.Duration
	}{
		{"index=5", DefaultBlockingWait, DefaultBlockingWait * 17 / 16},
		{"index=5&wait=0s", DefaultBlockingWait, DefaultBlockingWait * 17 / 16}, // consul's default, not "at once"
		{"index=5&wait=0", DefaultBlockingWait, DefaultBlockingWait * 17 / 16},
		{"index=5&wait=10s", 10 * time.Second, 10 * time.Second * 17 / 16},
		{"index=5&wait=1h", MaxBlockingWait, MaxBlockingWait * 17 / 16},
	} {
		q, _ := url.ParseQuery(tt.query)
		b, err := parseBlocking(q)
		if err != nil || b.wait < tt.min || b.wait > tt.max || b.index != 5 {
			t.Errorf("%s: wait %s index %d, %v; want %s..%s", tt.query, b.wait, b.index, err, tt.min, tt.max)
		}
	}
}
