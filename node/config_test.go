package node

import (
	"errors"
	"strings"
	"testing"
)

func TestDefaultConfigIsValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
}

func TestValidateNamesTheFlag(t *testing.T) {
	tests := []struct {
		flag string
		edit func(*Config)
		want error
	}{
		{"--name", func(c *Config) { c.Name = "" }, ErrConfig},
		{"--name", func(c *Config) { c.Name = "a b" }, ErrConfig},
		{"--listen", func(c *Config) { c.Listen = "4222" }, ErrConfig},
		{"--nats", func(c *Config) { c.NATSURL = "localhost" }, ErrConfig},
		{"--http", func(c *Config) { c.HTTP = "on" }, ErrConfig},
		{"--replicas", func(c *Config) { c.Replicas = 0 }, ErrConfig},
		{"--partitions", func(c *Config) { c.Partitions = 0 }, ErrConfig},
		{"--max-memory", func(c *Config) { c.MaxMemory = -1 }, ErrConfig},
		{"--placement-tag", func(c *Config) { c.PlacementTag = "zone=a" }, ErrConfig},
		{"--placement-tag", func(c *Config) { c.PlacementTag = "two words" }, ErrConfig},
		{"--max-value", func(c *Config) { c.MaxValue = 0 }, ErrConfig},
		{"--max-key", func(c *Config) { c.MaxKey = 0 }, ErrConfig},
		{"--prefix", func(c *Config) { c.Prefix = "roost.>" }, ErrConfig},
		{"--role", func(c *Config) { c.Role = "king" }, ErrConfig},
		{"--cluster-listen", func(c *Config) { c.ClusterListen = "6222" }, ErrConfig},
		{"--nats", func(c *Config) { c.NATSURL = "nats://x:4222"; c.Join = []string{"y:6222"} }, ErrConfig},
		{"--heartbeat-interval", func(c *Config) { c.HeartbeatInterval = 0 }, ErrConfig},
		{"--dead-after", func(c *Config) { c.DeadAfter = 2 }, ErrConfig},
	}
	for _, tt := range tests {
		cfg := DefaultConfig()
		tt.edit(&cfg)
		err := cfg.Validate()
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.flag) {
			t.Errorf("%s: Validate() = %v, want %v naming %s", tt.flag, err, tt.want, tt.flag)
		}
	}
}

func TestStartRefusesMaxValueOverShardBudget(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen, cfg.HTTP = "127.0.0.1:-1", HTTPOff
	cfg.MaxMemory = 512 << 10 // one shard of 512 KiB, below the 1 MiB --max-value
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	if err := n.Start(); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "--max-value") {
		t.Fatalf("Start = %v, want ErrConfig naming --max-value", err)
	}
}
