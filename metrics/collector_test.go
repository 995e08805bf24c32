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
