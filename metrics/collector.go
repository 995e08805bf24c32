package metrics

import (
	"errors"
	"fmt"

	"github.com/bulwark-go/bulwark/core"
	"github.com/prometheus/client_golang/prometheus"
)

// Config says what a Collector exports.
type Config struct {
	// Namespace prefixes every metric name ("myapp" gives
	// myapp_circuit_breaker_state). Empty means no prefix.
	Namespace string
	// Manager supplies the breakers and endpoint bulkheads. Required.
	Manager *core.Manager
	// SLO, when set, exports every tracked endpoint's objective.
	SLO *core.SLOGuard
	// PerUser names per-user bulkheads to export, by the value of their
	// "bulkhead" label. Only totals are exported: user IDs never become
	// labels.
	PerUser map[string]*core.PerUserBulkhead
}

// Collector is a prometheus.Collector that reads snapshots at scrape time,
// so endpoints created after registration appear without re-registering
// and the request path pays nothing for metrics.
type Collector struct {
	cfg  Config
	all  []*prometheus.Desc
	desc struct {
		state, requests, successful, failed, rejected, transitions, duration *prometheus.Desc
		bhActive, bhQueued, bhTotal, bhRejected, bhTimeout, bhQueueDuration  *prometheus.Desc
		sloSuccess, sloBudget, sloBurn                                       *prometheus.Desc
		puUsers, puRejected                                                  *prometheus.Desc
	}
}

// New returns a Collector for cfg.
func New(cfg Config) (*Collector, error) {
	if cfg.Manager == nil {
		return nil, errors.New("metrics: Config.Manager is required")
	}
	for name, p := range cfg.PerUser {
		if name == "" || p == nil {
			return nil, fmt.Errorf("metrics: Config.PerUser[%q]: want a non-empty name and a bulkhead", name)
		}
	}
	c := &Collector{cfg: cfg}
	ep := []string{"endpoint"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		desc := prometheus.NewDesc(prometheus.BuildFQName(cfg.Namespace, "", name), help, labels, nil)
		c.all = append(c.all, desc)
		return desc
	}
	c.desc.state = d("circuit_breaker_state", "Circuit breaker state: 0 Closed, 1 Open, 2 HalfOpen (ForcedOpen reads 1, Disabled 0).", ep...)
	c.desc.requests = d("circuit_breaker_requests_total", "Requests seen by the breaker: successful + failed + rejected.", ep...)
	c.desc.successful = d("circuit_breaker_requests_successful_total", "Requests the breaker let through that succeeded.", ep...)
	c.desc.failed = d("circuit_breaker_requests_failed_total", "Requests the breaker let through that failed.", ep...)
	c.desc.rejected = d("circuit_breaker_requests_rejected_total", "Requests the breaker refused.", ep...)
	c.desc.transitions = d("circuit_breaker_state_transitions_total", "State transitions by from and to state.", "endpoint", "from", "to")
	c.desc.duration = d("circuit_breaker_request_duration_seconds", "Duration of requests through the breaker, measured by the HTTP middleware and transport.", ep...)
	c.desc.bhActive = d("bulkhead_active_requests", "Requests holding a bulkhead slot now.", ep...)
	c.desc.bhQueued = d("bulkhead_queued_requests", "Requests waiting in the bulkhead's queue now.", ep...)
	c.desc.bhTotal = d("bulkhead_requests_total", "Requests that asked the bulkhead for a slot.", ep...)
	c.desc.bhRejected = d("bulkhead_requests_rejected_total", "Requests refused because the bulkhead and its queue were full.", ep...)
	c.desc.bhTimeout = d("bulkhead_requests_timeout_total", "Requests that waited in the queue past its timeout.", ep...)
	c.desc.bhQueueDuration = d("bulkhead_queue_duration_seconds", "Time requests waited in the bulkhead's queue.", ep...)
	c.desc.sloSuccess = d("slo_success_ratio", "Share of requests in the SLO window that succeeded.", ep...)
	c.desc.sloBudget = d("slo_error_budget_remaining_ratio", "Share of the window's error budget left; negative when overspent.", ep...)
	c.desc.sloBurn = d("slo_burn_rate", "Error budget burn rate over the long and short windows (1 spends the budget exactly over the window).", "endpoint", "window")
	c.desc.puUsers = d("per_user_bulkhead_tracked_users", "Users a per-user bulkhead tracks now.", "bulkhead")
	c.desc.puRejected = d("per_user_bulkhead_rejected_total", "Requests a per-user bulkhead refused: user over the limit, queue timeout, or table full.", "bulkhead")
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
	for _, d := range c.all {
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

// Collect reads every component's snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	dd := &c.desc
	for _, b := range c.cfg.Manager.Breakers() {
		s := b.Snapshot()
		ep := s.Endpoint
		gauge(ch, dd.state, StateValue(s.State), ep)
		counter(ch, dd.requests, float64(s.TotalRequests+s.RejectedRequests), ep)
		counter(ch, dd.successful, float64(s.SuccessfulRequests), ep)
		counter(ch, dd.failed, float64(s.FailedRequests), ep)
		counter(ch, dd.rejected, float64(s.RejectedRequests), ep)
		for from, row := range s.Transitions {
			for to, n := range row {
				if n > 0 {
					counter(ch, dd.transitions, float64(n), ep, core.State(from).String(), core.State(to).String())
				}
			}
		}
		histogram(ch, dd.duration, b.Durations(), ep)
	}
	for _, bh := range c.cfg.Manager.Bulkheads() {
		s, ep := bh.Stats(), bh.Name()
		gauge(ch, dd.bhActive, float64(s.Active), ep)
		gauge(ch, dd.bhQueued, float64(s.Queued), ep)
		counter(ch, dd.bhTotal, float64(s.Total), ep)
		counter(ch, dd.bhRejected, float64(s.Rejected), ep)
		counter(ch, dd.bhTimeout, float64(s.TimedOut), ep)
		histogram(ch, dd.bhQueueDuration, s.QueueTime, ep)
	}
	if c.cfg.SLO != nil {
		for _, s := range c.cfg.SLO.Statuses() {
			gauge(ch, dd.sloSuccess, s.SuccessRate, s.Endpoint)
			gauge(ch, dd.sloBudget, s.ErrorBudgetRemaining/100, s.Endpoint)
			gauge(ch, dd.sloBurn, s.LongBurnRate, s.Endpoint, "long")
			gauge(ch, dd.sloBurn, s.ShortBurnRate, s.Endpoint, "short")
		}
	}
	for name, p := range c.cfg.PerUser {
		s := p.Stats()
		gauge(ch, dd.puUsers, float64(s.Users), name)
		counter(ch, dd.puRejected, float64(s.All.Rejected+s.All.TimedOut+s.TooManyUsers), name)
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

var bounds = core.DurationBuckets()

func histogram(ch chan<- prometheus.Metric, d *prometheus.Desc, h core.HistogramSnapshot, labels ...string) {
	bk := make(map[float64]uint64, len(bounds))
	for i, ub := range bounds {
		bk[ub] = h.Buckets[i]
	}
	ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), bk, labels...)
}
