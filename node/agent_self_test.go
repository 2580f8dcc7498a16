package node

import (
	"errors"
	"strings"
	"testing"
)

func TestDatacenterFlag(t *testing.T) {
	for dc, ok := range map[string]bool{"": true, "dc1": true, "eu-west_2": true, "EU": false, "dc 1": false, "dc.1": false, "dc/1": false} {
		cfg := DefaultConfig()
		cfg.Name = "n"
		cfg.Datacenter = dc
		err := cfg.Validate()
		if ok != (err == nil) {
			t.Errorf("--datacenter %q: %v", dc, err)
		}
		if err != nil && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--datacenter")) {
			t.Errorf("--datacenter %q: %v does not name the flag", dc, err)
		}
	}
	if got := (Config{}).datacenter(); got != DefaultDatacenter {
		t.Errorf("the zero Config's datacenter = %q, want %q", got, DefaultDatacenter)
	}
}
