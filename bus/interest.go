package bus

// Interest reports whether any subscription anywhere in the NATS cluster
// matches subject, without sending anything: with an embedded server it is
// a lookup in the server's subscription list (its own clients, and the
// interest its routes and leaf nodes announced), which caches matches and
// costs well under a microsecond. known is false with an external NATS,
// whose subscriptions this process cannot see: the caller must ask (a
// request answers "no responders" in one round trip when nobody listens).
func (b *Bus) Interest(subject string) (listens, known bool) {
	if b.srv == nil {
		return false, false
	}
	acc := b.gacc.Load()
	if acc == nil {
		acc = b.srv.GlobalAccount() // the account of every client: Roost configures no others
		b.gacc.Store(acc)
	}
	return acc.Interest(subject) > 0, true
}
