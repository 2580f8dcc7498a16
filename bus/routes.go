package bus

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
)

// Errors of AddRoute.
var (
	ErrExternal  = errors.New("bus: the external NATS does the clustering")
	ErrNoCluster = errors.New("bus: the embedded server does not cluster (no --cluster-listen or --join at start)")
)

// AddRoute makes the embedded server route to another server at join
// (host:port or nats://host:port, as --join takes it), at run time: the
// server's options are reloaded with the route appended, and it connects
// in the background. Adding a route it already has is a no-op. It fails
// with ErrExternal on an external NATS and ErrNoCluster when the server was
// started without a cluster port (one cannot be opened by a reload).
func (b *Bus) AddRoute(join string) error {
	if b.srv == nil {
		return ErrExternal
	}
	b.routeMu.Lock()
	defer b.routeMu.Unlock()
	if b.opts.Cluster.Port == 0 {
		return ErrNoCluster
	}
	u, err := routeURL(join, b.token)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(b.opts.Routes, func(r *url.URL) bool { return r.String() == u.String() }) {
		return nil
	}
	next := b.opts.Clone()
	next.Routes = append(next.Routes, u)
	if err := b.srv.ReloadOptions(next.Clone()); err != nil {
		return fmt.Errorf("bus: add route %s: %w", u.Redacted(), err)
	}
	b.opts = next
	return nil
}
