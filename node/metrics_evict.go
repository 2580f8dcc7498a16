package node

import "github.com/prometheus/client_golang/prometheus"

// The evictions a node's copies took part in (replicator.EvictionStats;
// docs/replication.md, "Eviction and copies"), read at scrape time.
var (
	descEvictSent = prometheus.NewDesc("roost_evictions_sent_total",
		"Keys this node, as a partition's primary, told a replica to evict (one per key and replica).", nil, nil)
	descEvictForced = prometheus.NewDesc("roost_evictions_forced_total",
		"Copies this node's store evicted although it holds them for another primary (nothing else was left to evict); each is reported to its primary, which evicts the key from every copy.", nil, nil)
	descEvictFollowed = prometheus.NewDesc("roost_evictions_followed_total",
		"Entries removed from this node's store because an eviction decided for another copy reached it.", nil, nil)
)

type evictionCollector struct{ n *Node }

func (c evictionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descEvictSent
	ch <- descEvictForced
	ch <- descEvictFollowed
}

func (c evictionCollector) Collect(ch chan<- prometheus.Metric) {
	if c.n.repl == nil {
		return
	}
	st := c.n.repl.EvictionStats()
	ch <- prometheus.MustNewConstMetric(descEvictSent, prometheus.CounterValue, float64(st.Sent))
	ch <- prometheus.MustNewConstMetric(descEvictForced, prometheus.CounterValue, float64(st.Forced))
	ch <- prometheus.MustNewConstMetric(descEvictFollowed, prometheus.CounterValue, float64(st.Followed))
}
