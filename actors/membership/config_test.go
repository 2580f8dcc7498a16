package membership

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/roostkv/roost/bus/wire"
)

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		c := DefaultConfig()
		c.Self = Member{ID: "id", Name: "n", Role: RoleServer, Partitions: 271}
		c.Conn = &nats.Conn{} // never used by Validate
		c.Subjects = wire.NewSubjects("")
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	zero := good()
	zero.Interval, zero.SuspectAfter, zero.DeadAfter, zero.ForgetAfter = 0, 0, 0, 0
	if err := zero.Validate(); err != nil {
		t.Fatalf("zero timings (defaults): %v", err)
	}
	for _, tc := range []struct {
		field string // named in the error
		mod   func(*Config)
	}{
		{"Self.ID", func(c *Config) { c.Self.ID = "" }},
		{"Self.Name", func(c *Config) { c.Self.Name = "" }},
		{"Self.Role", func(c *Config) { c.Self.Role = "" }},
		{"Self.Role", func(c *Config) { c.Self.Role = "client" }},
		{"Self.Partitions", func(c *Config) { c.Self.Partitions = 0 }},
		{"Interval", func(c *Config) { c.Interval = -time.Second }},
		{"Interval", func(c *Config) { c.Interval = time.Microsecond }},
		{"SuspectAfter", func(c *Config) { c.SuspectAfter = -1 }},
		{"DeadAfter", func(c *Config) { c.DeadAfter = -1 }},
		{"DeadAfter", func(c *Config) { c.SuspectAfter, c.DeadAfter = 6, 6 }},
		{"DeadAfter", func(c *Config) { c.SuspectAfter, c.DeadAfter = 7, 0 }},
		{"ForgetAfter", func(c *Config) { c.ForgetAfter = -1 }},
		{"Conn", func(c *Config) { c.Conn = nil }},
		{"Subjects", func(c *Config) { c.Subjects = wire.Subjects{} }},
	} {
		c := good()
		tc.mod(&c)
		err := c.Validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Validate = %v, want an ErrConfig naming it", tc.field, err)
		}
	}
}
