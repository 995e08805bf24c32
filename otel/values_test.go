package bulwarkotel

import (
	"context"
	"github.com/bulwark-go/bulwark/events"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// A scripted sequence through the middleware: failures that open the
// breaker, a rejection, a reset. The instruments say what the breaker's
// snapshot says, and the spans got their events.
func TestBreakerSequence(t *testing.T) {
	clock := core.NewFakeClock(t0)
	m := newManager(t, core.ManagerConfig{Clock: clock, Defaults: core.EndpointConfig{
		Breaker: &core.BreakerConfig{FailureThreshold: 2, Timeout: 30 * time.Second},
	}})
	tel, r := newTelemetry(t, Config{Manager: m})
	mw, err := nethttp.Middleware(nethttp.Config{Manager: m, Observer: tel.Observer()})
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clock.Advance(30 * time.Millisecond)
		if r.URL.Query().Has("fail") {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	tr := newTracing()
	serve := func(target string) (string, []string, int) {
		req := httptest.NewRequest("GET", target, nil)
		req.Pattern = "GET /x"
		span, w := tr.serve(h, req)
		return spanAttrs(span), spanEvents(span), w.Code
	}
	if a, ev, code := serve("/x"); code != 200 || a != "{}" || ev != nil {
		t.Fatalf("a success: %d, span %s %q", code, a, ev)
	}
	if _, ev, _ := serve("/x?fail"); ev != nil {
		t.Fatalf("a failure that changes nothing: events %q", ev)
	}
	a, ev, _ := serve("/x?fail")
	if want := []string{"bulwark.circuit_breaker.transition{bulwark.circuit_breaker.previous_state=closed,bulwark.circuit_breaker.state=open,bulwark.endpoint=GET /x}"}; !slices.Equal(ev, want) {
		t.Fatalf("the failure that opens the breaker: events %q, want %q", ev, want)
	}
	if a != "{}" {
		t.Fatalf("span attributes %s", a)
	}
	a, ev, code := serve("/x")
	if want := []string{"bulwark.rejection{bulwark.endpoint=GET /x,bulwark.rejection.reason=circuit_open,bulwark.rejection.retry_after=30}"}; code != 503 || !slices.Equal(ev, want) {
		t.Fatalf("the rejection: %d, events %q, want %q", code, ev, want)
	}
	if a != "{bulwark.endpoint=GET /x,bulwark.rejection.reason=circuit_open}" {
		t.Fatalf("rejected span's attributes %s", a)
	}
	b := endpoint(t, m, "GET /x").Breaker()
	b.Reset()
	if _, _, code := serve("/x"); code != 200 {
		t.Fatalf("after the reset: %d", code)
	}

	compareLines(t, lines(collect(t, r), "bulwark.circuit_breaker.state", "bulwark.circuit_breaker.calls",
		"bulwark.circuit_breaker.transitions", "bulwark.rejections", "bulwark.request.duration"), `
		bulwark.circuit_breaker.calls{bulwark.endpoint=GET /x,bulwark.outcome=failure} 2
		bulwark.circuit_breaker.calls{bulwark.endpoint=GET /x,bulwark.outcome=rejected} 1
		bulwark.circuit_breaker.calls{bulwark.endpoint=GET /x,bulwark.outcome=success} 2
		bulwark.circuit_breaker.state{bulwark.circuit_breaker.state=closed,bulwark.endpoint=GET /x} 1
		bulwark.circuit_breaker.state{bulwark.circuit_breaker.state=disabled,bulwark.endpoint=GET /x} 0
		bulwark.circuit_breaker.state{bulwark.circuit_breaker.state=forced_open,bulwark.endpoint=GET /x} 0
		bulwark.circuit_breaker.state{bulwark.circuit_breaker.state=half_open,bulwark.endpoint=GET /x} 0
		bulwark.circuit_breaker.state{bulwark.circuit_breaker.state=open,bulwark.endpoint=GET /x} 0
		bulwark.circuit_breaker.transitions{bulwark.circuit_breaker.previous_state=closed,bulwark.circuit_breaker.state=open,bulwark.endpoint=GET /x} 1
		bulwark.circuit_breaker.transitions{bulwark.circuit_breaker.previous_state=open,bulwark.circuit_breaker.state=closed,bulwark.endpoint=GET /x} 1
		bulwark.rejections{bulwark.endpoint=GET /x,bulwark.rejection.reason=circuit_open} 1
		bulwark.request.duration{bulwark.endpoint=GET /x} count=4 sum=0.12
	`)
	// The same facts as the snapshot, which the Prometheus collector reads.
	s := b.Snapshot()
	if s.State != events.Closed || s.SuccessfulRequests != 2 || s.FailedRequests != 2 || s.RejectedRequests != 1 ||
		s.Transitions[events.Closed][events.Open] != 1 || s.Transitions[events.Open][events.Closed] != 1 {
		t.Fatalf("snapshot %+v", s)
	}
	if d := endpoint(t, m, "GET /x").Durations(); d.Count != 4 || d.Sum != 120*time.Millisecond {
		t.Fatalf("the endpoint's own histogram: %d calls, %v", d.Count, d.Sum)
	}
}

// Bulkhead slots, queue waits and refusals; the SLO; the per-user
// bulkhead: each instrument reads what the component's stats say.
func TestBulkheadSLOAndPerUserValues(t *testing.T) {
	clock := core.NewFakeClock(t0)
	bh := core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: 1, QueueTimeout: 100 * time.Millisecond}
	m := newManager(t, core.ManagerConfig{
		Clock:     clock,
		Endpoints: map[string]core.EndpointConfig{"POST /orders": {Bulkhead: &bh, SLO: &core.SLOConfig{ErrorBudgetPercent: 20}}},
		PerUser:   &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}},
	})
	_, r := newTelemetry(t, Config{Manager: m})
	e := endpoint(t, m, "POST /orders")
	b := e.Bulkhead()
	g, err := b.TryAcquire()
	if err != nil {
		t.Fatal(err)
	}
	// One waiter gets the slot after 40ms; the next times out after 100ms.
	waited := make(chan core.Guard)
	wait := func() {
		go func() {
			g, err := b.Acquire(context.Background())
			if err != nil {
				g = core.Guard{}
			}
			waited <- g
		}()
		if !clock.WaitForTimers(1, 5*time.Second) {
			t.Fatal("the waiter never queued")
		}
	}
	wait()
	clock.Advance(40 * time.Millisecond)
	g.Release()
	g = <-waited
	wait()
	_, _ = b.TryAcquire() // the queue is full: refused
	clock.Advance(100 * time.Millisecond)
	<-waited
	for i := range 10 {
		e.SLO().Record(i != 0)
	}
	pu := m.PerUser()
	ug, _ := pu.TryAcquire("alice")
	defer ug.Release()
	_, _ = pu.TryAcquire("alice") // over the limit
	bg, _ := pu.TryAcquire("bob")
	defer bg.Release()

	compareLines(t, lines(collect(t, r), "bulwark.bulkhead.active_requests", "bulwark.bulkhead.queued_requests", "bulwark.bulkhead.requests",
		"bulwark.bulkhead.queue.waits", "bulwark.bulkhead.queue.time", "bulwark.rejections", "bulwark.slo.success_ratio",
		"bulwark.slo.error_budget.remaining", "bulwark.per_user_bulkhead.users"), `
		bulwark.bulkhead.active_requests{bulwark.endpoint=POST /orders} 1
		bulwark.bulkhead.queue.time{bulwark.endpoint=POST /orders} 0.14
		bulwark.bulkhead.queue.waits{bulwark.endpoint=POST /orders} 2
		bulwark.bulkhead.queued_requests{bulwark.endpoint=POST /orders} 0
		bulwark.bulkhead.requests{bulwark.endpoint=POST /orders} 4
		bulwark.per_user_bulkhead.users{} 2
		bulwark.rejections{bulwark.endpoint=POST /orders,bulwark.rejection.reason=bulkhead_full} 1
		bulwark.rejections{bulwark.endpoint=POST /orders,bulwark.rejection.reason=bulkhead_timeout} 1
		bulwark.rejections{bulwark.endpoint=POST /orders,bulwark.rejection.reason=circuit_open} 0
		bulwark.rejections{bulwark.rejection.reason=user_limit} 1
		bulwark.slo.error_budget.remaining{bulwark.endpoint=POST /orders} 0.5
		bulwark.slo.success_ratio{bulwark.endpoint=POST /orders} 0.9
	`)
	st := b.Stats()
	if st.Active != 1 || st.Total != 4 || st.Rejected != 1 || st.TimedOut != 1 || st.QueueTime.Count != 2 || st.QueueTime.Sum != 140*time.Millisecond {
		t.Fatalf("bulkhead stats %+v", st)
	}
	if n := len(lines(collect(t, r), "bulwark.slo.burn_rate")); n != 2 {
		t.Fatalf("%d burn rate series, want long and short", n)
	}
	g.Release()
	if got := lines(collect(t, r), "bulwark.bulkhead.active_requests"); !slices.Equal(got, []string{"bulwark.bulkhead.active_requests{bulwark.endpoint=POST /orders} 0"}) {
		t.Fatalf("after the release: %q", got)
	}
}

// Rate limits and adaptive limits: each instrument reads what the
// limiter's stats say, and every refusal is a bulwark.rejections reason.
func TestRateAndAdaptiveLimitValues(t *testing.T) {
	m, _, r := usedManager(t)
	compareLines(t, lines(collect(t, r), "bulwark.rejections", "bulwark.rate_limit.allowed", "bulwark.rate_limit.rate",
		"bulwark.per_user_rate_limit.allowed", "bulwark.per_user_rate_limit.users", "bulwark.adaptive_limit.limit",
		"bulwark.adaptive_limit.active_requests", "bulwark.adaptive_limit.queued_requests", "bulwark.adaptive_limit.admitted",
		"bulwark.adaptive_limit.baseline_latency", "bulwark.adaptive_limit.recent_latency"), `
		bulwark.adaptive_limit.active_requests{bulwark.endpoint=POST /batch} 1
		bulwark.adaptive_limit.admitted{bulwark.endpoint=POST /batch} 41
		bulwark.adaptive_limit.baseline_latency{bulwark.endpoint=POST /batch} 0.005
		bulwark.adaptive_limit.limit{bulwark.endpoint=POST /batch} 1
		bulwark.adaptive_limit.queued_requests{bulwark.endpoint=POST /batch} 0
		bulwark.adaptive_limit.recent_latency{bulwark.endpoint=POST /batch} 0.005
		bulwark.per_user_rate_limit.allowed{} 1
		bulwark.per_user_rate_limit.users{} 1
		bulwark.rate_limit.allowed{bulwark.endpoint=GET /x} 1
		bulwark.rate_limit.rate{bulwark.endpoint=GET /x} 1
		bulwark.rejections{bulwark.endpoint=GET /x,bulwark.rejection.reason=bulkhead_full} 1
		bulwark.rejections{bulwark.endpoint=GET /x,bulwark.rejection.reason=bulkhead_timeout} 0
		bulwark.rejections{bulwark.endpoint=GET /x,bulwark.rejection.reason=circuit_open} 0
		bulwark.rejections{bulwark.endpoint=GET /x,bulwark.rejection.reason=rate_limited} 1
		bulwark.rejections{bulwark.endpoint=POST /batch,bulwark.rejection.reason=circuit_open} 0
		bulwark.rejections{bulwark.endpoint=POST /batch,bulwark.rejection.reason=concurrency_limit} 1
		bulwark.rejections{bulwark.endpoint=payments,bulwark.rejection.reason=circuit_open} 0
		bulwark.rejections{bulwark.rejection.reason=rate_limited} 1
		bulwark.rejections{bulwark.rejection.reason=user_limit} 1
	`)
	rl := endpoint(t, m, "GET /x").RateLimiter().Stats()
	al := endpoint(t, m, "POST /batch").Adaptive().Stats()
	pu := m.PerUserRateLimiter().Stats()
	if rl.Allowed != 1 || rl.Refused != 1 || rl.Rate != 1 || al.Limit != 1 || al.InFlight != 1 || al.Admitted != 41 ||
		al.Baseline != 5*time.Millisecond || pu.Allowed != 1 || pu.Refused+pu.TooManyUsers != 1 || pu.Users != 1 {
		t.Fatalf("stats: rate %+v, adaptive %+v, per user %+v", rl, al, pu)
	}
}

// injectOnce runs the experiment f on endpoint for one call, and stops it.
func injectOnce(t *testing.T, m *core.Manager, name string, f core.Fault) {
	t.Helper()
	f.Endpoint = name
	f, err := m.StartFault(f)
	if err != nil {
		t.Fatal(err)
	}
	defer m.StopFault(f.ID)
	if got, _ := endpoint(t, m, name).Inject(nil, nil); got == nil {
		t.Fatal("no fault injected")
	}
}

// Failures fault experiments made are an outcome of their own, and the
// calls they touched are counted by kind.
func TestFaultValues(t *testing.T) {
	m := newManager(t, core.ManagerConfig{Clock: core.NewFakeClock(t0), Faults: &core.FaultLimits{}})
	_, r := newTelemetry(t, Config{Manager: m})
	endpoint(t, m, "GET /quiet")
	p, _ := endpoint(t, m, "GET /x").Breaker().Allow()
	p.Report(core.Failure, 0)
	injectOnce(t, m, "GET /x", core.Fault{Percent: 100, Status: 500, Latency: time.Second})
	injectOnce(t, m, "GET /x", core.Fault{Percent: 100, Abort: true})
	compareLines(t, lines(collect(t, r), "bulwark.circuit_breaker.calls", "bulwark.fault.injected"), `
		bulwark.circuit_breaker.calls{bulwark.endpoint=GET /quiet,bulwark.outcome=failure} 0
		bulwark.circuit_breaker.calls{bulwark.endpoint=GET /quiet,bulwark.outcome=rejected} 0
		bulwark.circuit_breaker.calls{bulwark.endpoint=GET /quiet,bulwark.outcome=success} 0
		bulwark.circuit_breaker.calls{bulwark.endpoint=GET /x,bulwark.outcome=failure} 1
		bulwark.circuit_breaker.calls{bulwark.endpoint=GET /x,bulwark.outcome=injected_failure} 2
		bulwark.circuit_breaker.calls{bulwark.endpoint=GET /x,bulwark.outcome=rejected} 0
		bulwark.circuit_breaker.calls{bulwark.endpoint=GET /x,bulwark.outcome=success} 0
		bulwark.fault.injected{bulwark.endpoint=GET /x,bulwark.fault.kind=abort} 1
		bulwark.fault.injected{bulwark.endpoint=GET /x,bulwark.fault.kind=latency} 1
		bulwark.fault.injected{bulwark.endpoint=GET /x,bulwark.fault.kind=status} 1
	`)
}
