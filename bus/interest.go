package bus

import (
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// LoadInterest reports whether a responder anywhere in the NATS cluster
// subscribes to the load subject subject, without sending anything. known is
// false with an external NATS, whose subscriptions this process cannot see:
// the caller must ask (a request answers "no responders" in one round trip
// when nobody listens).
//
// With an embedded server it is a lookup in the server's subscription list
// (its own clients, and the interest its routes announced), well under a
// microsecond. An observer — `nats sub 'roost.>'`, or '>' — matches every
// load subject too, yet never answers: taken for a loader, it would make
// every miss wait out the load timeout. probe is a subject beside subject
// that no loader subscribes to ("<prefix>.noload.<key>"): when nothing
// matches it, every match of subject is a loader. When something does,
// observers are about, and the node looks at the subscriptions' own
// subjects: a loader's names the load token literally (starts with
// loadBase, "<prefix>.load."). Those are listed from the server's local
// subscriptions and its routes' (what peers' clients subscribed to), at
// most every loadPatternsEvery, and again when the count of subscriptions
// changes.
func (b *Bus) LoadInterest(subject, probe, loadBase string) (listens, known bool) {
	if b.srv == nil {
		return false, false
	}
	acc := b.account()
	if !acc.SubscriptionInterest(subject) {
		return false, true
	}
	if !acc.SubscriptionInterest(probe) {
		return true, true
	}
	for _, p := range b.loadPatterns.get(b.srv, acc, loadBase) {
		if server.SubjectMatchesFilter(subject, p) {
			return true, true
		}
	}
	return false, true
}

// account is the embedded server's global account, the account of every
// client (Roost configures no others), looked up once: the server's own
// lookup takes its lock, which the message path contends for.
func (b *Bus) account() *server.Account {
	acc := b.gacc.Load()
	if acc == nil {
		acc = b.srv.GlobalAccount()
		b.gacc.Store(acc)
	}
	return acc
}

// loadPatternsEvery bounds how often the loader subscriptions are listed
// again while the count of subscriptions keeps changing.
const loadPatternsEvery = 100 * time.Millisecond

// loadPatterns caches the subjects of the subscriptions under a load base.
type loadPatterns struct {
	mu       sync.Mutex
	base     string
	subs     int       // the account's subscription count when listed
	listed   time.Time // when listed
	patterns []string  // subjects of subscriptions under base, local and routed
}

func (lp *loadPatterns) get(srv *server.Server, acc *server.Account, base string) []string {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	total := acc.TotalSubs()
	now := time.Now()
	if lp.base == base && !lp.listed.IsZero() && (total == lp.subs || now.Sub(lp.listed) < loadPatternsEvery) && now.Sub(lp.listed) < time.Second {
		return lp.patterns
	}
	lp.base, lp.subs, lp.listed, lp.patterns = base, total, now, lp.patterns[:0]
	eachSubscription(srv, func(sub server.SubDetail) {
		if strings.HasPrefix(sub.Subject, base) {
			lp.patterns = append(lp.patterns, sub.Subject)
		}
	})
	return lp.patterns
}

// eachSubscription calls fn with every subscription the server knows of:
// its own clients', and what its routes announced of their servers'.
func eachSubscription(srv *server.Server, fn func(sub server.SubDetail)) {
	if sz, err := srv.Subsz(&server.SubszOptions{Subscriptions: true, Limit: 1 << 20}); err == nil {
		for _, sub := range sz.Subs {
			fn(sub)
		}
	}
	if rz, err := srv.Routez(&server.RoutezOptions{SubscriptionsDetail: true}); err == nil {
		for _, r := range rz.Routes {
			for _, sub := range r.SubsDetail {
				fn(sub)
			}
		}
	}
}

// QueueSubscribers returns, by subject, how many subscriptions in queue
// group queue the cluster has on exactly that subject (not on a wildcard
// that matches it): this server's clients' own, and one for each peer
// server whose clients have one (what its route announced). known is false
// with an external NATS, whose subscriptions this process cannot see. The
// map is shared: the caller must not change it.
//
// It is not Interest: the server's count of the subscriptions a subject
// matches stops at the first full wildcard it meets on the way, so with an
// observer on ">" or "roost.>" about it counts the observer alone. The
// subscriptions are listed from the server instead, as for the load
// subjects: again when the count of subscriptions changed (at most every
// queueListEvery), and at least every queueListMaxAge, since one
// subscription added and another removed leave the count as it was; in
// between it is a lookup.
func (b *Bus) QueueSubscribers(queue string) (subs map[string]int, known bool) {
	if b.srv == nil {
		return nil, false
	}
	return b.queueSubs.get(b.srv, b.account(), queue), true
}

// queueListEvery bounds how often QueueSubscribers lists the subscriptions
// again while their count keeps changing; queueListMaxAge is how long a
// list is used while it does not.
const (
	queueListEvery  = 5 * time.Millisecond
	queueListMaxAge = 100 * time.Millisecond
)

// queueSubs caches QueueSubscribers' counts.
type queueSubs struct {
	mu     sync.Mutex
	queue  string
	subs   int       // the account's subscription count when listed
	listed time.Time // when listed
	counts map[string]int
}

func (q *queueSubs) get(srv *server.Server, acc *server.Account, queue string) map[string]int {
	q.mu.Lock()
	defer q.mu.Unlock()
	total := acc.TotalSubs()
	now := time.Now()
	age := now.Sub(q.listed)
	if q.queue == queue && q.counts != nil && age < queueListMaxAge && (total == q.subs || age < queueListEvery) {
		return q.counts
	}
	counts := map[string]int{}
	eachSubscription(srv, func(sub server.SubDetail) {
		if sub.Queue == queue {
			counts[sub.Subject]++
		}
	})
	q.queue, q.subs, q.listed, q.counts = queue, total, now, counts
	return counts
}
