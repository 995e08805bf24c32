package metrics

import (
	"errors"

	"github.com/bulwark-go/bulwark/core"
	"github.com/prometheus/client_golang/prometheus"
)

// Config says what a Collector exports.
type Config struct {
	// Namespace prefixes every metric name ("myapp" gives
	// myapp_circuit_breaker_state). Empty means no prefix.
	Namespace string
	// Manager supplies the breakers (and their endpoint bulkheads). Required.
	Manager *core.Manager
}

// Collector is a prometheus.Collector that reads Manager snapshots at
// scrape time, so breakers created after registration appear without
// re-registering and the request path pays nothing for metrics.
type Collector struct {
	cfg Config
	d   descs
}

type descs struct {
	state, requests, successful, failed, rejected, transitions, duration *prometheus.Desc
}

// New returns a Collector for cfg.
func New(cfg Config) (*Collector, error) {
	if cfg.Manager == nil {
		return nil, errors.New("metrics: Config.Manager is required")
	}
	c := &Collector{cfg: cfg}
	ns := cfg.Namespace
	ep := []string{"endpoint"}
	c.d = descs{
		state: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "circuit_breaker_state"),
			"Circuit breaker state: 0 Closed, 1 Open, 2 HalfOpen (ForcedOpen reads 1, Disabled 0).", ep, nil),
		requests: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "circuit_breaker_requests_total"),
			"Requests seen by the breaker: successful + failed + rejected.", ep, nil),
		successful: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "circuit_breaker_requests_successful_total"),
			"Requests the breaker let through that succeeded.", ep, nil),
		failed: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "circuit_breaker_requests_failed_total"),
			"Requests the breaker let through that failed.", ep, nil),
		rejected: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "circuit_breaker_requests_rejected_total"),
			"Requests the breaker refused.", ep, nil),
		transitions: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "circuit_breaker_state_transitions_total"),
			"State transitions by from and to state.", []string{"endpoint", "from", "to"}, nil),
		duration: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "circuit_breaker_request_duration_seconds"),
			"Duration of requests through the breaker, measured by the HTTP middleware and transport.", ep, nil),
	}
	return c, nil
}

// Register makes a Collector for cfg and registers it on reg. Bulwark never
// registers on the global registry by itself: pass
// prometheus.DefaultRegisterer to use it.
func Register(reg prometheus.Registerer, cfg Config) (*Collector, error) {
	if reg == nil {
		return nil, errors.New("metrics: Register needs a prometheus.Registerer")
	}
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Describe sends the descriptors of every metric the Collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.d.state, c.d.requests, c.d.successful, c.d.failed, c.d.rejected, c.d.transitions, c.d.duration} {
		ch <- d
	}
}

// StateValue is the circuit_breaker_state value of a state: 0 Closed, 1
// Open, 2 HalfOpen; ForcedOpen reads as Open (1) and Disabled as Closed (0),
// since that is what callers experience.
func StateValue(s core.State) float64 {
	switch s {
	case core.Open, core.ForcedOpen:
		return 1
	case core.HalfOpen:
		return 2
	}
	return 0
}

// Collect reads every breaker's snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	buckets := core.DurationBuckets()
	for _, b := range c.cfg.Manager.Breakers() {
		s := b.Snapshot()
		ep := s.Endpoint
		gauge(ch, c.d.state, StateValue(s.State), ep)
		counter(ch, c.d.requests, float64(s.TotalRequests+s.RejectedRequests), ep)
		counter(ch, c.d.successful, float64(s.SuccessfulRequests), ep)
		counter(ch, c.d.failed, float64(s.FailedRequests), ep)
		counter(ch, c.d.rejected, float64(s.RejectedRequests), ep)
		for from, row := range s.Transitions {
			for to, n := range row {
				if n > 0 {
					counter(ch, c.d.transitions, float64(n), ep, core.State(from).String(), core.State(to).String())
				}
			}
		}
		histogram(ch, c.d.duration, b.Durations(), buckets, ep)
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func histogram(ch chan<- prometheus.Metric, d *prometheus.Desc, h core.HistogramSnapshot, bounds []float64, labels ...string) {
	bk := make(map[float64]uint64, len(bounds))
	for i, ub := range bounds {
		bk[ub] = h.Buckets[i]
	}
	ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), bk, labels...)
}
