package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newManager(t *testing.T) *core.Manager {
	t.Helper()
	m, err := core.NewManager(core.ManagerConfig{
		Breaker: core.Config{FailureThreshold: 2},
		Clock:   core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBreakerMetrics(t *testing.T) {
	m := newManager(t)
	reg := prometheus.NewPedanticRegistry()
	c, err := Register(reg, Config{Manager: m, Namespace: "app"})
	if err != nil {
		t.Fatal(err)
	}
	// Created after registration: must still appear.
	b, _ := m.Breaker("GET /users/{id}")
	for _, o := range []core.Outcome{core.Success, core.Success, core.Failure, core.Failure} {
		p, _ := b.Allow()
		p.Report(o, 0)
		b.ObserveDuration(30 * time.Millisecond)
	}
	_, _ = b.Allow() // rejected: open now

	want := `
# HELP app_circuit_breaker_requests_failed_total Requests the breaker let through that failed.
# TYPE app_circuit_breaker_requests_failed_total counter
app_circuit_breaker_requests_failed_total{endpoint="GET /users/{id}"} 2
# HELP app_circuit_breaker_requests_rejected_total Requests the breaker refused.
# TYPE app_circuit_breaker_requests_rejected_total counter
app_circuit_breaker_requests_rejected_total{endpoint="GET /users/{id}"} 1
# HELP app_circuit_breaker_requests_successful_total Requests the breaker let through that succeeded.
# TYPE app_circuit_breaker_requests_successful_total counter
app_circuit_breaker_requests_successful_total{endpoint="GET /users/{id}"} 2
# HELP app_circuit_breaker_requests_total Requests seen by the breaker: successful + failed + rejected.
# TYPE app_circuit_breaker_requests_total counter
app_circuit_breaker_requests_total{endpoint="GET /users/{id}"} 5
# HELP app_circuit_breaker_state Circuit breaker state: 0 Closed, 1 Open, 2 HalfOpen (ForcedOpen reads 1, Disabled 0).
# TYPE app_circuit_breaker_state gauge
app_circuit_breaker_state{endpoint="GET /users/{id}"} 1
# HELP app_circuit_breaker_state_transitions_total State transitions by from and to state.
# TYPE app_circuit_breaker_state_transitions_total counter
app_circuit_breaker_state_transitions_total{endpoint="GET /users/{id}",from="Closed",to="Open"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"app_circuit_breaker_state", "app_circuit_breaker_requests_total", "app_circuit_breaker_requests_successful_total",
		"app_circuit_breaker_requests_failed_total", "app_circuit_breaker_requests_rejected_total",
		"app_circuit_breaker_state_transitions_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "app_circuit_breaker_request_duration_seconds"); n != 1 {
		t.Fatalf("duration histograms: %d", n)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}

func TestStateValues(t *testing.T) {
	for s, want := range map[core.State]float64{core.Closed: 0, core.Open: 1, core.HalfOpen: 2, core.ForcedOpen: 1, core.Disabled: 0} {
		if got := StateValue(s); got != want {
			t.Errorf("%s: %v", s, got)
		}
	}
}

func TestRegisterNeedsARegistererAndManager(t *testing.T) {
	if _, err := Register(nil, Config{Manager: newManager(t)}); err == nil {
		t.Fatal("nil registerer accepted")
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("missing manager accepted")
	}
}

func TestBulkheadSLOAndPerUserMetrics(t *testing.T) {
	clock := core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m, _ := core.NewManager(core.ManagerConfig{Clock: clock, Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}})
	slo, _ := core.NewSLOGuard(m, core.SLOGuardConfig{})
	users, _ := core.NewPerUserBulkhead(core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}}, core.WithClock(clock))
	reg := prometheus.NewPedanticRegistry()
	c, err := Register(reg, Config{Manager: m, SLO: slo, PerUser: map[string]*core.PerUserBulkhead{"api": users}})
	if err != nil {
		t.Fatal(err)
	}
	bh, _ := m.Bulkhead("POST /orders")
	g, _ := bh.TryAcquire()
	_, _ = bh.TryAcquire() // rejected
	for i := range 10 {
		_ = slo.RecordRequest("POST /orders", i != 0)
	}
	ug, _ := users.TryAcquire("alice")
	_, _ = users.TryAcquire("alice") // rejected
	_, _ = users.TryAcquire("bob")

	want := `
# HELP bulkhead_active_requests Requests holding a bulkhead slot now.
# TYPE bulkhead_active_requests gauge
bulkhead_active_requests{endpoint="POST /orders"} 1
# HELP bulkhead_requests_rejected_total Requests refused because the bulkhead and its queue were full.
# TYPE bulkhead_requests_rejected_total counter
bulkhead_requests_rejected_total{endpoint="POST /orders"} 1
# HELP bulkhead_requests_total Requests that asked the bulkhead for a slot.
# TYPE bulkhead_requests_total counter
bulkhead_requests_total{endpoint="POST /orders"} 2
# HELP per_user_bulkhead_rejected_total Requests a per-user bulkhead refused: user over the limit, queue timeout, or table full.
# TYPE per_user_bulkhead_rejected_total counter
per_user_bulkhead_rejected_total{bulkhead="api"} 1
# HELP per_user_bulkhead_tracked_users Users a per-user bulkhead tracks now.
# TYPE per_user_bulkhead_tracked_users gauge
per_user_bulkhead_tracked_users{bulkhead="api"} 2
# HELP slo_success_ratio Share of requests in the SLO window that succeeded.
# TYPE slo_success_ratio gauge
slo_success_ratio{endpoint="POST /orders"} 0.9
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "bulkhead_active_requests", "bulkhead_requests_total",
		"bulkhead_requests_rejected_total", "per_user_bulkhead_tracked_users", "per_user_bulkhead_rejected_total", "slo_success_ratio"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c, "slo_burn_rate"); n != 2 {
		t.Fatalf("burn rate series: %d", n)
	}
	// No series carries a user ID.
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if v := lp.GetValue(); v == "alice" || v == "bob" {
					t.Fatalf("%s carries a user ID", mf.GetName())
				}
			}
		}
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	g.Release()
	ug.Release()
	if _, err := New(Config{Manager: m, PerUser: map[string]*core.PerUserBulkhead{"": users}}); err == nil {
		t.Fatal("empty per-user name accepted")
	}
}
