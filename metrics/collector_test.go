package metrics

import (
	"context"
	"errors"
	"github.com/bulwark-go/bulwark/events"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bulwark-go/bulwark/core"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newManager(t *testing.T, cfg core.ManagerConfig) *core.Manager {
	t.Helper()
	cfg.Clock = core.NewFakeClock(t0)
	m, err := core.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func endpoint(t *testing.T, m *core.Manager, name string) *core.Endpoint {
	t.Helper()
	e, err := m.Endpoint(name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// register returns a Collector for cfg on a registry of its own.
func register(t *testing.T, cfg Config) (*Collector, *prometheus.Registry) {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	return c, reg
}

func lint(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

func TestBreakerMetrics(t *testing.T) {
	m := newManager(t, core.ManagerConfig{Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 2}}})
	c, reg := register(t, Config{Manager: m, Namespace: "app"})
	// Created after registration: must still appear.
	e := endpoint(t, m, "GET /users/{id}")
	b := e.Breaker()
	for _, o := range []core.Outcome{core.Success, core.Success, core.Failure, core.Failure} {
		p, _ := b.Allow()
		p.Report(o, 0)
		e.ObserveDuration(30 * time.Millisecond)
	}
	_, _ = b.Allow() // rejected: open now

	want := `
# HELP app_circuit_breaker_requests_failed_total Requests the breaker let through that failed, real failures only: those a fault experiment made are in circuit_breaker_requests_injected_failures_total.
# TYPE app_circuit_breaker_requests_failed_total counter
app_circuit_breaker_requests_failed_total{endpoint="GET /users/{id}"} 2
# HELP app_circuit_breaker_requests_rejected_total Requests the breaker refused.
# TYPE app_circuit_breaker_requests_rejected_total counter
app_circuit_breaker_requests_rejected_total{endpoint="GET /users/{id}"} 1
# HELP app_circuit_breaker_requests_successful_total Requests the breaker let through that succeeded.
# TYPE app_circuit_breaker_requests_successful_total counter
app_circuit_breaker_requests_successful_total{endpoint="GET /users/{id}"} 2
# HELP app_circuit_breaker_requests_total Requests seen by the breaker: successful + failed + injected failures + rejected.
# TYPE app_circuit_breaker_requests_total counter
app_circuit_breaker_requests_total{endpoint="GET /users/{id}"} 5
# HELP app_circuit_breaker_state Circuit breaker state: 0 Closed, 1 Open, 2 HalfOpen (ForcedOpen reads 1, Disabled 0).
# TYPE app_circuit_breaker_state gauge
app_circuit_breaker_state{endpoint="GET /users/{id}"} 1
# HELP app_circuit_breaker_state_transitions_total State transitions by from and to state.
# TYPE app_circuit_breaker_state_transitions_total counter
app_circuit_breaker_state_transitions_total{endpoint="GET /users/{id}",from="Closed",to="Open"} 1
# HELP app_circuit_breaker_request_duration_seconds Duration of requests through the endpoint, measured by the HTTP middleware and transport.
# TYPE app_circuit_breaker_request_duration_seconds histogram
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="0.005"} 0
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="0.01"} 0
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="0.025"} 0
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="0.05"} 4
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="0.1"} 4
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="0.25"} 4
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="0.5"} 4
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="1"} 4
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="2.5"} 4
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="5"} 4
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="10"} 4
app_circuit_breaker_request_duration_seconds_bucket{endpoint="GET /users/{id}",le="+Inf"} 4
app_circuit_breaker_request_duration_seconds_sum{endpoint="GET /users/{id}"} 0.12
app_circuit_breaker_request_duration_seconds_count{endpoint="GET /users/{id}"} 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"app_circuit_breaker_state", "app_circuit_breaker_requests_total", "app_circuit_breaker_requests_successful_total",
		"app_circuit_breaker_requests_failed_total", "app_circuit_breaker_requests_rejected_total",
		"app_circuit_breaker_state_transitions_total", "app_circuit_breaker_request_duration_seconds"); err != nil {
		t.Fatal(err)
	}
	// An endpoint with only a breaker exports no bulkhead, SLO or retry
	// series.
	for _, name := range []string{"app_bulkhead_requests_total", "app_slo_success_ratio", "app_retry_calls_total"} {
		if n := testutil.CollectAndCount(c, name); n != 0 {
			t.Errorf("%s: %d series for an endpoint without that policy", name, n)
		}
	}
	lint(t, c)
}

func TestStateValues(t *testing.T) {
	for s, want := range map[events.State]float64{events.Closed: 0, events.Open: 1, events.HalfOpen: 2, events.ForcedOpen: 1, events.Disabled: 0} {
		if got := stateValue(s); got != want {
			t.Errorf("%s: %v", s, got)
		}
	}
}

// configFields returns the Field of every *core.ConfigError joined in err,
// sorted.
func configFields(err error) []string {
	var fields []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var ce *core.ConfigError
		if errors.As(e, &ce) {
			fields = append(fields, ce.Field)
		}
	}
	walk(err)
	slices.Sort(fields)
	return fields
}

func TestConfigErrors(t *testing.T) {
	m := newManager(t, core.ManagerConfig{})
	for _, c := range []struct {
		name   string
		cfg    Config
		fields []string // nil: valid
	}{
		{"no Manager", Config{}, []string{"metrics.Config.Manager"}},
		{"Namespace starting with a digit", Config{Manager: m, Namespace: "9app"}, []string{"metrics.Config.Namespace"}},
		{"Namespace with a dash", Config{Manager: m, Namespace: "my-app"}, []string{"metrics.Config.Namespace"}},
		{"Namespace with a space", Config{Manager: m, Namespace: "my app"}, []string{"metrics.Config.Namespace"}},
		{"every bad field", Config{Namespace: "é"}, []string{"metrics.Config.Manager", "metrics.Config.Namespace"}},
		{"no Namespace", Config{Manager: m}, nil},
		{"Namespace", Config{Manager: m, Namespace: "my_app:v2"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			col, err := New(c.cfg)
			if c.fields == nil {
				if err != nil {
					t.Fatalf("a valid config refused: %v", err)
				}
				lint(t, col)
				return
			}
			var ce *core.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, core.ErrInvalidConfig) {
				t.Fatalf("error %v (%T), want *core.ConfigError values", err, err)
			}
			if got := configFields(err); !slices.Equal(got, c.fields) {
				t.Fatalf("fields %q, want %q (error: %v)", got, c.fields, err)
			}
		})
	}
}

func TestBulkheadSLOAndPerUserMetrics(t *testing.T) {
	one := core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}
	m := newManager(t, core.ManagerConfig{
		Endpoints: map[string]core.EndpointConfig{
			"POST /orders": {Bulkhead: &one, SLO: &core.SLOConfig{ErrorBudgetPercent: 20}},
		},
		PerUser: &core.PerUserConfig{Bulkhead: one},
	})
	c, reg := register(t, Config{Manager: m})
	orders := endpoint(t, m, "POST /orders")
	endpoint(t, m, "GET /health") // a breaker only
	g, _ := orders.Bulkhead().TryAcquire()
	defer g.Release()
	_, _ = orders.Bulkhead().TryAcquire() // rejected
	for i := range 10 {
		orders.SLO().Record(i != 0)
	}
	ug, _ := m.PerUser().TryAcquire("alice")
	defer ug.Release()
	_, _ = m.PerUser().TryAcquire("alice") // rejected
	bg, _ := m.PerUser().TryAcquire("bob")
	defer bg.Release()

	want := `
# HELP bulkhead_active_requests Requests holding a bulkhead slot now.
# TYPE bulkhead_active_requests gauge
bulkhead_active_requests{endpoint="POST /orders"} 1
# HELP bulkhead_queued_requests Requests waiting in the bulkhead's queue now.
# TYPE bulkhead_queued_requests gauge
bulkhead_queued_requests{endpoint="POST /orders"} 0
# HELP bulkhead_requests_rejected_total Requests refused because the bulkhead and its queue were full.
# TYPE bulkhead_requests_rejected_total counter
bulkhead_requests_rejected_total{endpoint="POST /orders"} 1
# HELP bulkhead_requests_total Requests that asked the bulkhead for a slot.
# TYPE bulkhead_requests_total counter
bulkhead_requests_total{endpoint="POST /orders"} 2
# HELP per_user_bulkhead_rejected_total Requests the per-user bulkhead refused: user over the limit, queue timeout, or table full.
# TYPE per_user_bulkhead_rejected_total counter
per_user_bulkhead_rejected_total 1
# HELP per_user_bulkhead_tracked_users Users the per-user bulkhead tracks now.
# TYPE per_user_bulkhead_tracked_users gauge
per_user_bulkhead_tracked_users 2
# HELP slo_error_budget_remaining_ratio Share of the window's error budget left; negative when overspent.
# TYPE slo_error_budget_remaining_ratio gauge
slo_error_budget_remaining_ratio{endpoint="POST /orders"} 0.5
# HELP slo_success_ratio Share of requests in the SLO window that succeeded.
# TYPE slo_success_ratio gauge
slo_success_ratio{endpoint="POST /orders"} 0.9
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "bulkhead_active_requests", "bulkhead_queued_requests",
		"bulkhead_requests_total", "bulkhead_requests_rejected_total", "per_user_bulkhead_tracked_users",
		"per_user_bulkhead_rejected_total", "slo_success_ratio", "slo_error_budget_remaining_ratio"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "slo_burn_rate"); n != 2 {
		t.Fatalf("burn rate series: %d, want long and short", n)
	}
	if n := testutil.CollectAndCount(c, "bulkhead_queue_duration_seconds"); n != 1 {
		t.Fatalf("queue duration histograms: %d", n)
	}
	// No series carries a user ID, nor a label that could.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if v := lp.GetValue(); v == "alice" || v == "bob" {
					t.Errorf("%s carries a user ID", mf.GetName())
				}
				if n := lp.GetName(); n != "endpoint" && n != "from" && n != "to" && n != "window" && n != "le" {
					t.Errorf("%s has a label %q", mf.GetName(), n)
				}
			}
		}
	}
	lint(t, c)
}

// Retry metrics appear for endpoints whose retry policy made calls (the
// Transport's), not for inbound routes.
func TestRetryMetrics(t *testing.T) {
	noWait := func(int, error) (time.Duration, bool) { return 0, true }
	m := newManager(t, core.ManagerConfig{Endpoints: map[string]core.EndpointConfig{
		"payments": {Retry: &core.RetryConfig{MaxAttempts: 3, Delay: noWait}},
		"search": {
			Breaker: &core.BreakerConfig{FailureThreshold: 2},
			Retry:   &core.RetryConfig{MaxAttempts: 5, Delay: noWait},
		},
	}})
	c, reg := register(t, Config{Manager: m, Namespace: "app"})
	ctx := context.Background()
	fail := func(context.Context) error { return errors.New("upstream down") }
	ok := func(context.Context) error { return nil }
	payments, search := endpoint(t, m, "payments"), endpoint(t, m, "search")
	endpoint(t, m, "GET /users/{id}")  // inbound: its retry is never used
	_ = payments.Retry().Do(ctx, fail) // 3 attempts, exhausted
	_ = payments.Retry().Do(ctx, ok)
	_ = search.Retry().Do(ctx, fail) // 2 attempts open the breaker: aborted
	_ = search.Retry().Do(ctx, fail) // rejected before its first attempt

	want := `
# HELP app_retry_aborted_by_breaker_total Calls whose retries stopped because the breaker rejected the next attempt.
# TYPE app_retry_aborted_by_breaker_total counter
app_retry_aborted_by_breaker_total{endpoint="payments"} 0
app_retry_aborted_by_breaker_total{endpoint="search"} 1
# HELP app_retry_calls_total Outbound calls made through the endpoint's retry policy.
# TYPE app_retry_calls_total counter
app_retry_calls_total{endpoint="payments"} 2
app_retry_calls_total{endpoint="search"} 2
# HELP app_retry_exhausted_total Calls that failed on their last allowed attempt.
# TYPE app_retry_exhausted_total counter
app_retry_exhausted_total{endpoint="payments"} 1
app_retry_exhausted_total{endpoint="search"} 0
# HELP app_retry_retries_total Attempts after the first.
# TYPE app_retry_retries_total counter
app_retry_retries_total{endpoint="payments"} 2
app_retry_retries_total{endpoint="search"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "app_retry_calls_total", "app_retry_retries_total",
		"app_retry_exhausted_total", "app_retry_aborted_by_breaker_total"); err != nil {
		t.Fatal(err)
	}
	lint(t, c)
}

// Describe lists every metric the Collector can export, so that a
// registry can check them before the first scrape.
func TestDescribeCoversCollect(t *testing.T) {
	m := newManager(t, core.ManagerConfig{
		Defaults: core.EndpointConfig{Bulkhead: &core.BulkheadConfig{}, SLO: &core.SLOConfig{},
			RateLimit: &core.RateLimitConfig{}, Adaptive: &core.AdaptiveConfig{}, Hedge: &core.HedgeConfig{}},
		PerUser:          &core.PerUserConfig{},
		PerUserRateLimit: &core.PerUserRateLimitConfig{},
		Faults:           &core.FaultLimits{},
	})
	c, err := New(Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	e := endpoint(t, m, "GET /x")
	_ = e.Retry().Do(context.Background(), func(context.Context) error { return nil })
	injectOnce(t, m, e, core.Fault{Endpoint: "GET /x", Percent: 100, Abort: true})
	e.Breaker().Trip("test")
	described := map[string]bool{}
	dch := make(chan *prometheus.Desc, 100)
	c.Describe(dch)
	close(dch)
	for d := range dch {
		described[d.String()] = true
	}
	mch := make(chan prometheus.Metric, 100)
	c.Collect(mch)
	close(mch)
	seen := map[string]bool{}
	for mt := range mch {
		if !described[mt.Desc().String()] {
			t.Errorf("collected but not described: %s", mt.Desc())
		}
		seen[mt.Desc().String()] = true
	}
	if len(seen) != len(described) {
		t.Errorf("%d of %d described metrics collected with every policy in use", len(seen), len(described))
	}
}

func TestRateLimitAndAdaptiveMetrics(t *testing.T) {
	m := newManager(t, core.ManagerConfig{
		Endpoints: map[string]core.EndpointConfig{
			"GET /search": {
				RateLimit: &core.RateLimitConfig{Rate: 2, Burst: 2},
				Adaptive:  &core.AdaptiveConfig{MinLimit: 1, MaxLimit: 1, InitialLimit: 1},
			},
		},
		PerUserRateLimit: &core.PerUserRateLimitConfig{RateLimit: core.RateLimitConfig{Rate: 1, Burst: 1}},
	})
	c, reg := register(t, Config{Manager: m})
	e := endpoint(t, m, "GET /search")
	for range 3 {
		_ = e.RateLimiter().Allow() // 2 allowed, 1 refused
	}
	p, err := e.Adaptive().TryAcquire(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Adaptive().TryAcquire(0); err == nil {
		t.Fatal("a second call got past a limit of 1")
	}
	u := m.PerUserRateLimiter()
	_, _, _ = u.Allow("alice"), u.Allow("alice"), u.Allow("bob") // alice's second is refused

	want := `
# HELP adaptive_limit The endpoint's adaptive concurrency limit now.
# TYPE adaptive_limit gauge
adaptive_limit{endpoint="GET /search"} 1
# HELP adaptive_limit_active_requests Requests the adaptive limit admitted that have not finished.
# TYPE adaptive_limit_active_requests gauge
adaptive_limit_active_requests{endpoint="GET /search"} 1
# HELP adaptive_limit_admitted_total Requests the adaptive limit admitted.
# TYPE adaptive_limit_admitted_total counter
adaptive_limit_admitted_total{endpoint="GET /search"} 1
# HELP adaptive_limit_shed_total Requests the adaptive limit refused (503), by priority level (0 the least important, shed first).
# TYPE adaptive_limit_shed_total counter
adaptive_limit_shed_total{endpoint="GET /search",priority="0"} 1
# HELP per_user_rate_limit_requests_allowed_total Requests the per-user rate limit let through, over every user.
# TYPE per_user_rate_limit_requests_allowed_total counter
per_user_rate_limit_requests_allowed_total 2
# HELP per_user_rate_limit_requests_refused_total Requests the per-user rate limit refused: user over their rate, or the user table full.
# TYPE per_user_rate_limit_requests_refused_total counter
per_user_rate_limit_requests_refused_total 1
# HELP per_user_rate_limit_tracked_users Users the per-user rate limit tracks now.
# TYPE per_user_rate_limit_tracked_users gauge
per_user_rate_limit_tracked_users 2
# HELP rate_limit_rate Requests per second the endpoint's rate limit allows now: the configured rate, or this instance's share of a limit shared across instances.
# TYPE rate_limit_rate gauge
rate_limit_rate{endpoint="GET /search"} 2
# HELP rate_limit_requests_allowed_total Requests the endpoint's rate limit let through.
# TYPE rate_limit_requests_allowed_total counter
rate_limit_requests_allowed_total{endpoint="GET /search"} 2
# HELP rate_limit_requests_refused_total Requests the endpoint's rate limit refused (429).
# TYPE rate_limit_requests_refused_total counter
rate_limit_requests_refused_total{endpoint="GET /search"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "adaptive_limit", "adaptive_limit_active_requests",
		"adaptive_limit_admitted_total", "adaptive_limit_shed_total", "per_user_rate_limit_requests_allowed_total",
		"per_user_rate_limit_requests_refused_total", "per_user_rate_limit_tracked_users", "rate_limit_rate",
		"rate_limit_requests_allowed_total", "rate_limit_requests_refused_total"); err != nil {
		t.Fatal(err)
	}
	p.Done(core.Success, time.Millisecond)
	lint(t, c)
}

func TestTimeoutAndHedgeMetrics(t *testing.T) {
	m := newManager(t, core.ManagerConfig{Endpoints: map[string]core.EndpointConfig{
		"quotes": {Hedge: &core.HedgeConfig{Delay: time.Millisecond, MaxRatio: 1}},
	}})
	c, reg := register(t, Config{Manager: m})
	q := endpoint(t, m, "quotes")
	endpoint(t, m, "GET /x") // no hedge policy: no hedge series
	p, _ := q.Breaker().Allow()
	p.Report(core.Timeout, time.Second)
	p, _ = q.Breaker().Allow()
	p.Report(core.Failure, 0)
	q.HedgeDelay()
	q.Hedge()
	want := `
# HELP circuit_breaker_requests_failed_total Requests the breaker let through that failed, real failures only: those a fault experiment made are in circuit_breaker_requests_injected_failures_total.
# TYPE circuit_breaker_requests_failed_total counter
circuit_breaker_requests_failed_total{endpoint="GET /x"} 0
circuit_breaker_requests_failed_total{endpoint="quotes"} 2
# HELP circuit_breaker_requests_timeout_total Requests the breaker let through that ran out of their time (also counted in circuit_breaker_requests_failed_total).
# TYPE circuit_breaker_requests_timeout_total counter
circuit_breaker_requests_timeout_total{endpoint="GET /x"} 0
circuit_breaker_requests_timeout_total{endpoint="quotes"} 1
# HELP hedge_requests_total Hedged attempts sent: a second attempt of a call that had not answered within the hedge delay.
# TYPE hedge_requests_total counter
hedge_requests_total{endpoint="quotes"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "circuit_breaker_requests_failed_total",
		"circuit_breaker_requests_timeout_total", "hedge_requests_total"); err != nil {
		t.Fatal(err)
	}
	lint(t, c)
}

// injectOnce runs the experiment f for one call of e, and stops it.
func injectOnce(t *testing.T, m *core.Manager, e *core.Endpoint, f core.Fault) {
	t.Helper()
	f, err := m.StartFault(f)
	if err != nil {
		t.Fatal(err)
	}
	defer m.StopFault(f.ID)
	if got, _ := e.Inject(nil, nil); got == nil {
		t.Fatal("no fault injected")
	}
}

// Injected failures are counted apart from real ones, and the calls
// experiments touched by kind, for the endpoints they ran on only.
func TestFaultMetrics(t *testing.T) {
	m := newManager(t, core.ManagerConfig{Faults: &core.FaultLimits{}})
	c, reg := register(t, Config{Manager: m})
	e := endpoint(t, m, "GET /x")
	endpoint(t, m, "GET /quiet")
	p, _ := e.Breaker().Allow()
	p.Report(core.Failure, 0)
	injectOnce(t, m, e, core.Fault{Endpoint: "GET /x", Percent: 100, Status: 503, Latency: time.Millisecond})
	injectOnce(t, m, e, core.Fault{Endpoint: "GET /x", Percent: 100, Abort: true})
	injectOnce(t, m, e, core.Fault{Endpoint: "GET /x", Percent: 100, Status: 404})
	want := `
# HELP circuit_breaker_requests_failed_total Requests the breaker let through that failed, real failures only: those a fault experiment made are in circuit_breaker_requests_injected_failures_total.
# TYPE circuit_breaker_requests_failed_total counter
circuit_breaker_requests_failed_total{endpoint="GET /quiet"} 0
circuit_breaker_requests_failed_total{endpoint="GET /x"} 1
# HELP circuit_breaker_requests_injected_failures_total Failures a fault experiment made; the breaker weighs them as real ones.
# TYPE circuit_breaker_requests_injected_failures_total counter
circuit_breaker_requests_injected_failures_total{endpoint="GET /quiet"} 0
circuit_breaker_requests_injected_failures_total{endpoint="GET /x"} 2
# HELP circuit_breaker_requests_total Requests seen by the breaker: successful + failed + injected failures + rejected.
# TYPE circuit_breaker_requests_total counter
circuit_breaker_requests_total{endpoint="GET /quiet"} 0
circuit_breaker_requests_total{endpoint="GET /x"} 4
# HELP fault_injected_total Requests a fault experiment delayed (fault=latency), answered with a status (status) or aborted (abort).
# TYPE fault_injected_total counter
fault_injected_total{endpoint="GET /x",fault="abort"} 1
fault_injected_total{endpoint="GET /x",fault="latency"} 1
fault_injected_total{endpoint="GET /x",fault="status"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "circuit_breaker_requests_failed_total",
		"circuit_breaker_requests_injected_failures_total", "circuit_breaker_requests_total", "fault_injected_total"); err != nil {
		t.Fatal(err)
	}
	lint(t, c)
}

// The README's metric table lists every metric the Collector describes.
func TestREADMEListsEveryMetric(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "| metric |"):
			in = true
			continue
		case !strings.HasPrefix(l, "|"):
			in = false
		}
		if in && !strings.HasPrefix(l, "| ---") {
			listed = append(listed, strings.Trim(strings.TrimSpace(strings.Split(l, "|")[1]), "`"))
		}
	}
	c, err := New(Config{Manager: newManager(t, core.ManagerConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 100)
	c.Describe(ch)
	close(ch)
	var described []string
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		described = append(described, name.FindStringSubmatch(d.String())[1])
	}
	slices.Sort(listed)
	slices.Sort(described)
	if !slices.Equal(listed, described) {
		t.Fatalf("README lists\n%v\nthe Collector describes\n%v", listed, described)
	}
}
