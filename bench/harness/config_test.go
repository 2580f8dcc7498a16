package harness

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want error  // nil or ErrConfig
		flag string // named in the message
	}{
		{"default", func(*Config) {}, nil, ""},
		{"server", func(c *Config) { c.Server = "nats://127.0.0.1:4222"; c.Nodes = 0 }, nil, ""},
		{"workload", func(c *Config) { c.Workload = "scan" }, ErrConfig, "--workload"},
		{"get ratio", func(c *Config) { c.GetRatio = 1.5 }, ErrConfig, "--get-ratio"},
		{"zipf s", func(c *Config) { c.Dist = DistZipf; c.ZipfS = 1 }, ErrConfig, "--zipf-s"},
		{"keys", func(c *Config) { c.Keys = 0 }, ErrConfig, "--keys"},
		{"value size", func(c *Config) { c.ValueSize = 2 << 20 }, ErrConfig, "--value-size"},
		{"concurrency", func(c *Config) { c.Concurrency = 0 }, ErrConfig, "--concurrency"},
		{"duration", func(c *Config) { c.Duration = 0 }, ErrConfig, "--duration"},
		{"round", func(c *Config) { c.Round = -time.Second }, ErrConfig, "--round"},
		{"ack", func(c *Config) { c.Ack = "none" }, ErrConfig, "--ack"},
		{"path", func(c *Config) { c.Path = "grpc" }, ErrConfig, "--path"},
		{"http path", func(c *Config) { c.Path = PathHTTP }, nil, ""},
		{"http path server", func(c *Config) {
			c.Path, c.Server, c.HTTPAddr, c.Nodes = PathHTTP, "nats://127.0.0.1:4222", "127.0.0.1:7721", 0
		}, nil, ""},
		{"http path ack all", func(c *Config) { c.Path, c.Ack = PathHTTP, "all" }, ErrConfig, "--ack"},
		{"http path server without http-addr", func(c *Config) { c.Path, c.Server = PathHTTP, "nats://127.0.0.1:4222" }, ErrConfig, "--http-addr"},
		{"http-addr without server", func(c *Config) { c.Path, c.HTTPAddr = PathHTTP, "127.0.0.1:7721" }, ErrConfig, "--http-addr"},
		{"http-addr not host:port", func(c *Config) {
			c.Path, c.Server, c.HTTPAddr = PathHTTP, "nats://127.0.0.1:4222", "http://127.0.0.1:7721/"
		}, ErrConfig, "--http-addr"},
		{"nodes", func(c *Config) { c.Nodes = 10 }, ErrConfig, "--nodes"},
		{"procs", func(c *Config) { c.Procs, c.Exec, c.Nodes = true, "/usr/local/bin/roost", 3 }, nil, ""},
		{"procs with server", func(c *Config) { c.Procs, c.Exec, c.Server = true, "/usr/local/bin/roost", "nats://127.0.0.1:4222" }, ErrConfig, "--procs"},
		{"procs without exec", func(c *Config) { c.Procs = true }, ErrConfig, "--procs"},
		{"echo subject", func(c *Config) { c.EchoSubject = "any" }, ErrConfig, "--echo-subject"},
		{"preloaded", func(c *Config) { c.Preloaded, c.Server, c.KeyPrefix = true, "nats://127.0.0.1:4222", "k." }, nil, ""},
		{"preloaded without server", func(c *Config) { c.Preloaded, c.KeyPrefix = true, "k." }, ErrConfig, "--preloaded"},
		{"preloaded without key prefix", func(c *Config) { c.Preloaded, c.Server = true, "nats://127.0.0.1:4222" }, ErrConfig, "--preloaded"},
		{"preloaded incr", func(c *Config) {
			c.Preloaded, c.Server, c.KeyPrefix, c.Workload = true, "nats://127.0.0.1:4222", "k.", WorkloadIncr
		}, ErrConfig, "--preloaded"},
		{"echo server without base", func(c *Config) { c.EchoServer = "nats://127.0.0.1:4222" }, ErrConfig, "--echo-server"},
		{"extra", func(c *Config) {
			c.Extra = []ExtraTarget{{Name: "redis", Open: func() (Target, error) { return nil, nil }}}
		}, nil, ""},
		{"extra named roost", func(c *Config) {
			c.Extra = []ExtraTarget{{Name: NameRoost, Open: func() (Target, error) { return nil, nil }}}
		}, ErrConfig, "extra target"},
		{"extra without open", func(c *Config) { c.Extra = []ExtraTarget{{Name: "x"}} }, ErrConfig, "extra target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.flag) {
				t.Fatalf("Validate = %v, want %v naming %s", err, tt.want, tt.flag)
			}
		})
	}
}

func TestRounds(t *testing.T) {
	c := DefaultConfig()
	c.Duration, c.Round = 5*time.Second, 2*time.Second
	got := c.rounds()
	want := []time.Duration{2 * time.Second, 2 * time.Second, time.Second}
	if len(got) != len(want) {
		t.Fatalf("rounds = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("rounds = %v, want %v", got, want)
		}
	}
}

func TestTurns(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		turn, round time.Duration
		want        []time.Duration
	}{
		{250 * ms, 2000 * ms, []time.Duration{250 * ms, 250 * ms, 250 * ms, 250 * ms, 250 * ms, 250 * ms, 250 * ms, 250 * ms}},
		{300 * ms, 700 * ms, []time.Duration{300 * ms, 300 * ms, 100 * ms}},
		{0, 2000 * ms, []time.Duration{2000 * ms}},         // one turn per round: the method before turns
		{2000 * ms, 2000 * ms, []time.Duration{2000 * ms}}, // as long as the round
		{5000 * ms, 1000 * ms, []time.Duration{1000 * ms}}, // longer: cut to the round
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.Turn = tt.turn
		if got := c.turns(tt.round); !slices.Equal(got, tt.want) {
			t.Errorf("turns of %s in a round of %s = %v, want %v", tt.turn, tt.round, got, tt.want)
		}
	}
}

func TestTurnOrder(t *testing.T) {
	tests := []struct {
		n, turn int
		want    []int
	}{
		{3, 0, []int{0, 1, 2}},
		{3, 1, []int{0, 2, 1}},
		{3, 2, []int{0, 1, 2}},
		{2, 1, []int{0, 1}},
		{1, 1, []int{0}},
		{4, 1, []int{0, 3, 2, 1}},
	}
	for _, tt := range tests {
		if got := turnOrder(tt.n, tt.turn); !slices.Equal(got, tt.want) {
			t.Errorf("turnOrder(%d, %d) = %v, want %v", tt.n, tt.turn, got, tt.want)
		}
	}
	// Over two turns of three targets each target follows each other one
	// once: echo roost kv | echo kv roost | echo ...
	follows := map[[2]int]int{}
	seq := append(append(turnOrder(3, 0), turnOrder(3, 1)...), turnOrder(3, 2)[0])
	for i := 1; i < len(seq); i++ {
		follows[[2]int{seq[i-1], seq[i]}]++
	}
	for a := range 3 {
		for b := range 3 {
			if want := map[bool]int{true: 0, false: 1}[a == b]; follows[[2]int{a, b}] != want {
				t.Errorf("%d right after %d %d times in %v, want %d", b, a, follows[[2]int{a, b}], seq, want)
			}
		}
	}
}
