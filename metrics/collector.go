package metrics

import (
	"github.com/bulwark-go/bulwark/events"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/check"
)

// Config says what a Collector exports.
type Config struct {
	// Namespace prefixes every metric name ("myapp" gives
	// myapp_circuit_breaker_state): letters, digits, _ and :, not starting
	// with a digit. Empty means no prefix.
	Namespace string
	// Manager supplies the endpoints: their breakers, bulkheads, SLOs and
	// retries, and the per-user bulkhead. Required.
	Manager *core.Manager
}

// Collector is a prometheus.Collector that reads snapshots at scrape time,
// so endpoints created after registration appear without re-registering
// and the request path pays nothing for metrics. Register it yourself:
// Bulwark never registers on the global registry behind your back.
type Collector struct {
	cfg  Config
	all  []*prometheus.Desc
	desc struct {
		state, requests, successful, failed, rejected, transitions, duration *prometheus.Desc
		injected, faults                                                     *prometheus.Desc
		bhActive, bhQueued, bhTotal, bhRejected, bhTimeout, bhQueueDuration  *prometheus.Desc
		sloSuccess, sloBudget, sloBurn                                       *prometheus.Desc
		puUsers, puRejected                                                  *prometheus.Desc
		retryCalls, retryRetries, retryExhausted, retryAborted               *prometheus.Desc
		rlAllowed, rlRefused, rlRate                                         *prometheus.Desc
		timeouts, hedges                                                     *prometheus.Desc
		purlAllowed, purlRefused, purlUsers                                  *prometheus.Desc
		alLimit, alActive, alQueued, alAdmitted, alShed, alBase, alRecent    *prometheus.Desc
	}
}

// New returns a Collector for cfg, or its problems as *core.ConfigError
// values.
func New(cfg Config) (*Collector, error) {
	c := check.New("metrics.Config.", func(f string, v any, r string) error { return &core.ConfigError{Field: f, Value: v, Rule: r} })
	if cfg.Manager == nil {
		c.Fail("Manager", nil, "is required")
	}
	// The legacy rule, not the package default (which admits any UTF-8):
	// a prefix scrapers and PromQL take without quoting.
	if cfg.Namespace != "" && !model.LegacyValidation.IsValidMetricName(cfg.Namespace) {
		c.Fail("Namespace", cfg.Namespace, "must be a valid Prometheus metric name prefix: letters, digits, _ and :, not starting with a digit")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	col := &Collector{cfg: cfg}
	ep := []string{"endpoint"}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		desc := prometheus.NewDesc(prometheus.BuildFQName(cfg.Namespace, "", name), help, labels, nil)
		col.all = append(col.all, desc)
		return desc
	}
	dd := &col.desc
	dd.state = d("circuit_breaker_state", "Circuit breaker state: 0 Closed, 1 Open, 2 HalfOpen (ForcedOpen reads 1, Disabled 0).", ep...)
	dd.requests = d("circuit_breaker_requests_total", "Requests seen by the breaker: successful + failed + injected failures + rejected.", ep...)
	dd.successful = d("circuit_breaker_requests_successful_total", "Requests the breaker let through that succeeded.", ep...)
	dd.failed = d("circuit_breaker_requests_failed_total", "Requests the breaker let through that failed, real failures only: those a fault experiment made are in circuit_breaker_requests_injected_failures_total.", ep...)
	dd.injected = d("circuit_breaker_requests_injected_failures_total", "Failures a fault experiment made; the breaker weighs them as real ones.", ep...)
	dd.faults = d("fault_injected_total", "Requests a fault experiment delayed (fault=latency), answered with a status (status) or aborted (abort).", "endpoint", "fault")
	dd.rejected = d("circuit_breaker_requests_rejected_total", "Requests the breaker refused.", ep...)
	dd.timeouts = d("circuit_breaker_requests_timeout_total", "Requests the breaker let through that ran out of their time (also counted in circuit_breaker_requests_failed_total).", ep...)
	dd.hedges = d("hedge_requests_total", "Hedged attempts sent: a second attempt of a call that had not answered within the hedge delay.", ep...)
	dd.transitions = d("circuit_breaker_state_transitions_total", "State transitions by from and to state.", "endpoint", "from", "to")
	dd.duration = d("circuit_breaker_request_duration_seconds", "Duration of requests through the endpoint, measured by the HTTP middleware and transport.", ep...)
	dd.bhActive = d("bulkhead_active_requests", "Requests holding a bulkhead slot now.", ep...)
	dd.bhQueued = d("bulkhead_queued_requests", "Requests waiting in the bulkhead's queue now.", ep...)
	dd.bhTotal = d("bulkhead_requests_total", "Requests that asked the bulkhead for a slot.", ep...)
	dd.bhRejected = d("bulkhead_requests_rejected_total", "Requests refused because the bulkhead and its queue were full.", ep...)
	dd.bhTimeout = d("bulkhead_requests_timeout_total", "Requests that waited in the queue past its timeout.", ep...)
	dd.bhQueueDuration = d("bulkhead_queue_duration_seconds", "Time requests waited in the bulkhead's queue.", ep...)
	dd.sloSuccess = d("slo_success_ratio", "Share of requests in the SLO window that succeeded.", ep...)
	dd.sloBudget = d("slo_error_budget_remaining_ratio", "Share of the window's error budget left; negative when overspent.", ep...)
	dd.sloBurn = d("slo_burn_rate", "Error budget burn rate over the long and short windows (1 spends the budget exactly over the window).", "endpoint", "window")
	dd.puUsers = d("per_user_bulkhead_tracked_users", "Users the per-user bulkhead tracks now.")
	dd.puRejected = d("per_user_bulkhead_rejected_total", "Requests the per-user bulkhead refused: user over the limit, queue timeout, or table full.")
	dd.retryCalls = d("retry_calls_total", "Outbound calls made through the endpoint's retry policy.", ep...)
	dd.retryRetries = d("retry_retries_total", "Attempts after the first.", ep...)
	dd.retryExhausted = d("retry_exhausted_total", "Calls that failed on their last allowed attempt.", ep...)
	dd.retryAborted = d("retry_aborted_by_breaker_total", "Calls whose retries stopped because the breaker rejected the next attempt.", ep...)
	dd.rlAllowed = d("rate_limit_requests_allowed_total", "Requests the endpoint's rate limit let through.", ep...)
	dd.rlRefused = d("rate_limit_requests_refused_total", "Requests the endpoint's rate limit refused (429).", ep...)
	dd.rlRate = d("rate_limit_rate", "Requests per second the endpoint's rate limit allows now: the configured rate, or this instance's share of a limit shared across instances.", ep...)
	dd.purlAllowed = d("per_user_rate_limit_requests_allowed_total", "Requests the per-user rate limit let through, over every user.")
	dd.purlRefused = d("per_user_rate_limit_requests_refused_total", "Requests the per-user rate limit refused: user over their rate, or the user table full.")
	dd.purlUsers = d("per_user_rate_limit_tracked_users", "Users the per-user rate limit tracks now.")
	dd.alLimit = d("adaptive_limit", "The endpoint's adaptive concurrency limit now.", ep...)
	dd.alActive = d("adaptive_limit_active_requests", "Requests the adaptive limit admitted that have not finished.", ep...)
	dd.alQueued = d("adaptive_limit_queued_requests", "Requests waiting for the adaptive limit to admit them.", ep...)
	dd.alAdmitted = d("adaptive_limit_admitted_total", "Requests the adaptive limit admitted.", ep...)
	dd.alShed = d("adaptive_limit_shed_total", "Requests the adaptive limit refused (503), by priority level (0 the least important, shed first).", "endpoint", "priority")
	dd.alBase = d("adaptive_limit_baseline_latency_seconds", "The latency the adaptive limit takes as healthy (0 before its first sample window).", ep...)
	dd.alRecent = d("adaptive_limit_recent_latency_seconds", "The mean latency of the adaptive limit's last sample window.", ep...)
	return col, nil
}

// Describe sends the descriptors of every metric the Collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.all {
		ch <- d
	}
}

// stateValue is the circuit_breaker_state value of a state: 0 Closed, 1
// Open, 2 HalfOpen; ForcedOpen reads as Open (1) and Disabled as Closed (0),
// since that is what callers experience.
func stateValue(s events.State) float64 {
	switch s {
	case events.Open, events.ForcedOpen:
		return 1
	case events.HalfOpen:
		return 2
	}
	return 0
}

// Collect reads every component's snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	dd := &c.desc
	for _, e := range c.cfg.Manager.Endpoints() {
		ep := e.Name()
		s := e.Breaker().Snapshot()
		gauge(ch, dd.state, stateValue(s.State), ep)
		counter(ch, dd.requests, float64(s.TotalRequests+s.InjectedFailures+s.RejectedRequests), ep)
		counter(ch, dd.successful, float64(s.SuccessfulRequests), ep)
		counter(ch, dd.failed, float64(s.FailedRequests), ep)
		counter(ch, dd.injected, float64(s.InjectedFailures), ep)
		// Only endpoints an experiment ran on have these.
		if s.InjectedLatency+s.InjectedStatus+s.InjectedAbort > 0 {
			counter(ch, dd.faults, float64(s.InjectedLatency), ep, "latency")
			counter(ch, dd.faults, float64(s.InjectedStatus), ep, "status")
			counter(ch, dd.faults, float64(s.InjectedAbort), ep, "abort")
		}
		counter(ch, dd.rejected, float64(s.RejectedRequests), ep)
		counter(ch, dd.timeouts, float64(s.Timeouts), ep)
		if n := e.Hedges(); n > 0 || e.Config().Hedge != nil {
			counter(ch, dd.hedges, float64(n), ep)
		}
		for from, row := range s.Transitions {
			for to, n := range row {
				if n > 0 {
					counter(ch, dd.transitions, float64(n), ep, events.State(from).String(), events.State(to).String())
				}
			}
		}
		histogram(ch, dd.duration, e.Durations(), ep)
		if bh := e.Bulkhead(); bh != nil {
			s := bh.Stats()
			gauge(ch, dd.bhActive, float64(s.Active), ep)
			gauge(ch, dd.bhQueued, float64(s.Queued), ep)
			counter(ch, dd.bhTotal, float64(s.Total), ep)
			counter(ch, dd.bhRejected, float64(s.Rejected), ep)
			counter(ch, dd.bhTimeout, float64(s.TimedOut), ep)
			histogram(ch, dd.bhQueueDuration, s.QueueTime, ep)
		}
		if slo := e.SLO(); slo != nil {
			s := slo.Status()
			gauge(ch, dd.sloSuccess, s.SuccessRate, ep)
			gauge(ch, dd.sloBudget, s.ErrorBudgetRemaining, ep)
			gauge(ch, dd.sloBurn, s.LongBurnRate, ep, "long")
			gauge(ch, dd.sloBurn, s.ShortBurnRate, ep, "short")
		}
		if rl := e.RateLimiter(); rl != nil {
			s := rl.Stats()
			counter(ch, dd.rlAllowed, float64(s.Allowed), ep)
			counter(ch, dd.rlRefused, float64(s.Refused), ep)
			gauge(ch, dd.rlRate, s.Rate, ep)
		}
		if al := e.Adaptive(); al != nil {
			s := al.Stats()
			gauge(ch, dd.alLimit, float64(s.Limit), ep)
			gauge(ch, dd.alActive, float64(s.InFlight), ep)
			gauge(ch, dd.alQueued, float64(s.Queued), ep)
			counter(ch, dd.alAdmitted, float64(s.Admitted), ep)
			for lv, n := range s.Shed {
				counter(ch, dd.alShed, float64(n), ep, strconv.Itoa(lv))
			}
			gauge(ch, dd.alBase, s.Baseline.Seconds(), ep)
			gauge(ch, dd.alRecent, s.Recent.Seconds(), ep)
		}
		// Only endpoints called through the Transport use their retry
		// policy; inbound routes would export zeros.
		if s := e.Retry().Stats(); s.Calls > 0 {
			counter(ch, dd.retryCalls, float64(s.Calls), ep)
			counter(ch, dd.retryRetries, float64(s.Retries), ep)
			counter(ch, dd.retryExhausted, float64(s.Exhausted), ep)
			counter(ch, dd.retryAborted, float64(s.AbortedByBreaker), ep)
		}
	}
	if p := c.cfg.Manager.PerUser(); p != nil {
		s := p.Stats()
		gauge(ch, dd.puUsers, float64(s.Users))
		counter(ch, dd.puRejected, float64(s.All.Rejected+s.All.TimedOut+s.TooManyUsers))
	}
	if p := c.cfg.Manager.PerUserRateLimiter(); p != nil {
		s := p.Stats()
		counter(ch, dd.purlAllowed, float64(s.Allowed))
		counter(ch, dd.purlRefused, float64(s.Refused+s.TooManyUsers))
		gauge(ch, dd.purlUsers, float64(s.Users))
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
