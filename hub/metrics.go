package hub

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the hub's Prometheus metrics. Counters and histograms are
// updated as things happen; the grid's state (slots, sessions, queue) is
// read under the hub's lock at scrape time, so it is never stale and costs
// nothing between scrapes.
type metrics struct {
	registry      *prometheus.Registry
	handler       http.Handler
	queueWait     prometheus.Histogram
	sessionCreate *prometheus.HistogramVec
	commands      *prometheus.CounterVec
	sessionsEnded *prometheus.CounterVec
}

func newMetrics(h *Hub) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "herd_grid_queue_wait_seconds",
			Help:    "Time new-session requests waited in the queue for a slot (requests served at once are not counted).",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 10),
		}),
		sessionCreate: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herd_grid_session_create_seconds",
			Help:    "Time from a slot being reserved to the node's answer to the new-session request.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 10),
		}, []string{"result"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herd_grid_commands_total",
			Help: "Session commands proxied to nodes, by HTTP method.",
		}, []string{"method"}),
		sessionsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herd_grid_sessions_ended_total",
			Help: "Sessions that ended, by reason: deleted (by the client), timeout (--session-timeout), node_lost (no heartbeat, removed, re-registered elsewhere), gone_from_node (the node no longer ran it).",
		}, []string{"reason"}),
	}
	m.registry.MustRegister(
		m.queueWait, m.sessionCreate, m.commands, m.sessionsEnded,
		newStateCollector(h),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, reason := range []string{"deleted", "timeout", "node_lost", "gone_from_node"} {
		m.sessionsEnded.WithLabelValues(reason)
	}
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
	return m
}

// stateCollector reports the grid's state at scrape time.
type stateCollector struct {
	h                                                  *Hub
	nodes, slots, slotsBusy, sessions, queue, queueOld *prometheus.Desc
}

func newStateCollector(h *Hub) *stateCollector {
	return &stateCollector{
		h:         h,
		nodes:     prometheus.NewDesc("herd_grid_nodes", "Registered nodes, by availability (UP, DRAINING).", []string{"availability"}, nil),
		slots:     prometheus.NewDesc("herd_grid_slots", "Session slots on registered nodes, by browser.", []string{"browser"}, nil),
		slotsBusy: prometheus.NewDesc("herd_grid_slots_busy", "Slots running or creating a session, by browser.", []string{"browser"}, nil),
		sessions:  prometheus.NewDesc("herd_grid_sessions", "Running sessions, by browser.", []string{"browser"}, nil),
		queue:     prometheus.NewDesc("herd_grid_queue_length", "New-session requests waiting for a slot.", nil, nil),
		queueOld:  prometheus.NewDesc("herd_grid_queue_oldest_seconds", "How long the oldest queued request has waited; 0 when the queue is empty.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.nodes, c.slots, c.slotsBusy, c.sessions, c.queue, c.queueOld} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.h
	h.mu.Lock()
	nodes := map[string]float64{"UP": 0, "DRAINING": 0}
	slots, busy, sessions := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, n := range h.nodes {
		if n.draining {
			nodes["DRAINING"]++
		} else {
			nodes["UP"]++
		}
		for _, s := range n.slots {
			b := browserOf(s.stereotype)
			slots[b] += float64(s.maxSessions)
			busy[b] += float64(s.busy)
		}
	}
	for _, s := range h.sessions {
		sessions[browserOf(s.node.slots[s.slot].stereotype)]++
	}
	queued := float64(len(h.waiters))
	oldest := 0.0
	if len(h.waiters) > 0 {
		oldest = time.Since(h.waiters[0].enqueued).Seconds()
	}
	h.mu.Unlock()

	for k, v := range nodes {
		ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, v, k)
	}
	for k, v := range slots {
		ch <- prometheus.MustNewConstMetric(c.slots, prometheus.GaugeValue, v, k)
		ch <- prometheus.MustNewConstMetric(c.slotsBusy, prometheus.GaugeValue, busy[k], k)
		ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, sessions[k], k)
	}
	ch <- prometheus.MustNewConstMetric(c.queue, prometheus.GaugeValue, queued)
	ch <- prometheus.MustNewConstMetric(c.queueOld, prometheus.GaugeValue, oldest)
}

func browserOf(stereotype map[string]any) string {
	if name, ok := stereotype["browserName"].(string); ok && name != "" {
		return name
	}
	return "any"
}
