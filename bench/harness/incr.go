package harness

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
)

// The incr workload: Roost's targets increment counters; the baselines
// have no increment and answer a set of the same size instead.

// valueSize is the bytes of the run's values: a counter's "0" for incr.
func (c Config) valueSize() int {
	if c.Workload == WorkloadIncr {
		return 1
	}
	return c.ValueSize
}

// incrementer is a target with counters.
type incrementer interface {
	Incr(key string) error // adds 1 to key's counter
}

var errIncrEmpty = errors.New("harness: empty reply to an incr")

// Incr sends roost.incr.<key> with no body (1), with the run's ack mode.
func (t *textTarget) Incr(key string) error {
	subject := t.subj.Incr(key)
	m, err := t.nc.RequestMsg(&nats.Msg{Subject: subject, Header: t.hdr}, t.timeout)
	if err != nil {
		return err
	}
	if err := serviceErr(subject, m); err != nil {
		return err
	}
	if len(m.Data) == 0 {
		return errIncrEmpty
	}
	return nil
}

// Incr is the Go client's Incr of 1.
func (t *clientTarget) Incr(key string) error {
	_, _, err := t.c.Incr(context.Background(), key, 1)
	return err
}

// Roost's targets have counters; the http path is refused by Validate.
var (
	_ incrementer = (*textTarget)(nil)
	_ incrementer = (*clientTarget)(nil)
)
