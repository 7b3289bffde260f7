package serve

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the Prometheus signals of one Server: what autoscalers (KEDA,
// HPA) and dashboards need. Job counts and worker slots are read at scrape
// time, so they are never stale and cost nothing between scrapes.
type metrics struct {
	handler http.Handler
	output  *prometheus.HistogramVec // /output latency by outcome
}

func newMetrics(s *Server) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		output: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "herd_output_seconds",
			Help:    "Time to answer POST /output, by outcome (ok, or the error code).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18), // 0.5 ms .. 65 s
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.output, &stateCollector{s: s},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range s.cfg.Collectors {
		reg.MustRegister(c)
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return m
}

// stateCollector reports the queue and the worker pools as they are now.
type stateCollector struct{ s *Server }

var (
	jobsDesc = prometheus.NewDesc("herd_jobs", "Unfinished train and input jobs of this service's queue (all replicas), by model, op and state (queued or running).",
		[]string{"model", "op", "state"}, nil)
	slotsDesc = prometheus.NewDesc("herd_worker_slots", "Worker processes of this replica, by pool (jobs or output).",
		[]string{"pool"}, nil)
	busyDesc = prometheus.NewDesc("herd_worker_slots_busy", "Worker processes of this replica handling a request, by pool.",
		[]string{"pool"}, nil)
	scrapeErrDesc = prometheus.NewDesc("herd_jobs_scrape_error", "1 when the job counts could not be read at this scrape.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsDesc
	ch <- slotsDesc
	ch <- busyDesc
	ch <- scrapeErrDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.s.cfg.Jobs.Counts(ctx)
	failed := 0.0
	if err != nil {
		failed = 1
		c.s.cfg.Logger.Warn("serve.metrics", "error", err)
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, failed)
	for _, n := range counts {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n.N), n.Model, n.Op, string(n.State))
	}
	for pool, p := range map[string]interface {
		Size() int
		Busy() int
	}{"jobs": c.s.cfg.JobPool, "output": c.s.cfg.OutputPool} {
		ch <- prometheus.MustNewConstMetric(slotsDesc, prometheus.GaugeValue, float64(p.Size()), pool)
		ch <- prometheus.MustNewConstMetric(busyDesc, prometheus.GaugeValue, float64(p.Busy()), pool)
	}
}
