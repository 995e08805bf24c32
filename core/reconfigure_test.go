package core

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// Reconfigure keeps a breaker's state, lifetime counts and window, and
// only starts the window again when its shape changes.
func TestReconfigureKeepsBreakerState(t *testing.T) {
	clock := NewFakeClock(t0)
	m, _ := NewManager(ManagerConfig{Clock: clock, Defaults: EndpointConfig{Breaker: &BreakerConfig{FailureThreshold: 3, MinRequestsForRate: 100}}})
	e := mustEndpoint(t, m, "svc")
	b := e.Breaker()
	for range 2 {
		b.RecordFailure()
	}
	b.RecordSuccess()
	b.RecordFailure()
	before := b.Snapshot()
	if err := m.Reconfigure("svc", EndpointConfig{Breaker: &BreakerConfig{FailureThreshold: 2, MinRequestsForRate: 100}}); err != nil {
		t.Fatal(err)
	}
	after := b.Snapshot()
	if mustEndpoint(t, m, "svc").Breaker() != b {
		t.Fatal("Reconfigure replaced the breaker")
	}
	if after.TotalRequests != before.TotalRequests || after.WindowRequests != before.WindowRequests || after.ConsecutiveFailures != 1 {
		t.Fatalf("counts changed: before %+v, after %+v", before, after)
	}
	b.RecordFailure() // the second in a row: the new threshold opens it
	if b.State() != events.Open {
		t.Fatalf("state %v: the new FailureThreshold 2 is not in force", b.State())
	}
	// A new window shape starts the window again; lifetime counts stay.
	if err := m.Reconfigure("svc", EndpointConfig{Breaker: &BreakerConfig{RollingWindow: 20 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	s := b.Snapshot()
	if s.State != events.Open || s.WindowRequests != 0 || s.TotalRequests != before.TotalRequests+1 {
		t.Fatalf("after a new window: %+v", s)
	}
}

// A bulkhead resized at runtime counts the slots already held against the
// new limit and hands slots freed by a larger one to queued calls at once.
func TestReconfigureResizesBulkheadInPlace(t *testing.T) {
	clock := NewFakeClock(t0)
	m, _ := NewManager(ManagerConfig{Clock: clock, Defaults: EndpointConfig{Bulkhead: &BulkheadConfig{MaxConcurrentRequests: 2, MaxQueueSize: 4, QueueTimeout: time.Hour, RetryAfter: 3 * time.Second}}})
	e := mustEndpoint(t, m, "svc")
	bh := e.Bulkhead()
	g1, _ := bh.Acquire(context.Background())
	g2, _ := bh.Acquire(context.Background())
	got := make(chan error, 1)
	go func() {
		g, err := bh.Acquire(context.Background())
		g.Release()
		got <- err
	}()
	if !clock.WaitForTimers(1, 10*time.Second) { // the queued call's timeout
		t.Fatal("the third call did not queue")
	}
	if err := m.Reconfigure("svc", EndpointConfig{Bulkhead: &BulkheadConfig{MaxConcurrentRequests: 3, MaxQueueSize: 4, RetryAfter: 7 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	if e.Bulkhead() != bh {
		t.Fatal("Reconfigure replaced the bulkhead")
	}
	if err := <-got; err != nil {
		t.Fatalf("the queued call: %v; the larger limit should have admitted it", err)
	}
	if err := m.Reconfigure("svc", EndpointConfig{Bulkhead: &BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: NoQueue, RetryAfter: 7 * time.Second}}); err != nil {
		t.Fatal(err)
	}
	_, err := bh.TryAcquire()
	var rej *RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, ErrBulkheadFull) || rej.RetryAfter() != 7*time.Second {
		t.Fatalf("two slots held against a limit of 1: %v (want a refusal suggesting 7s)", err)
	}
	// Once the calls in flight have ended, the new limit is in full force.
	g1.Release()
	g2.Release()
	g, err := bh.TryAcquire()
	if err != nil {
		t.Fatalf("nothing held: %v", err)
	}
	if _, err := bh.TryAcquire(); !errors.Is(err, ErrBulkheadFull) {
		t.Fatalf("a second slot against a limit of 1: %v", err)
	}
	g.Release()
	if s := bh.Stats(); s.MaxConcurrent != 1 || s.MaxQueue != 0 {
		t.Fatalf("stats show limits %d/%d, want 1/0", s.MaxConcurrent, s.MaxQueue)
	}
}

// Reconfigure can add and remove policies, keeps retry counters, and
// restarts an SLO only when its objective changed.
func TestReconfigureAddsAndRemovesPolicies(t *testing.T) {
	clock := NewFakeClock(t0)
	m, _ := NewManager(ManagerConfig{Clock: clock, Defaults: EndpointConfig{SLO: &SLOConfig{}}})
	e := mustEndpoint(t, m, "svc")
	if e.Bulkhead() != nil {
		t.Fatal("a bulkhead nobody configured")
	}
	_ = e.Retry().Do(context.Background(), func(context.Context) error { return nil })
	slo := e.SLO()
	slo.Record(false)
	if err := m.Reconfigure("svc", EndpointConfig{Bulkhead: &BulkheadConfig{}}); err != nil {
		t.Fatal(err)
	}
	if e.Bulkhead() == nil || e.SLO() != slo || e.Retry().Stats().Calls != 1 {
		t.Fatalf("bulkhead %v, same SLO %v, retry calls %d", e.Bulkhead(), e.SLO() == slo, e.Retry().Stats().Calls)
	}
	if err := m.Reconfigure("svc", EndpointConfig{SLO: &SLOConfig{TargetSuccessRate: 0.9}}); err != nil {
		t.Fatal(err)
	}
	if e.SLO() == slo || e.SLO().Status().Total != 0 || e.Bulkhead() != nil {
		t.Fatal("a new objective must start a new SLO window, and the bulkhead not given again must go")
	}
	if err := m.Reconfigure("svc", EndpointConfig{SLO: &SLOConfig{Disabled: true}}); err != nil {
		t.Fatal(err)
	}
	if e.SLO() != nil {
		t.Fatal("a disabled SLO is still tracked")
	}
}

// Turning Disabled on and off at runtime is a transition each way; a bad
// configuration changes nothing and names the field.
func TestReconfigureDisableAndErrors(t *testing.T) {
	clock := NewFakeClock(t0)
	bus := events.NewBus()
	sub := bus.Subscribe(8)
	defer sub.Close()
	m, _ := NewManager(ManagerConfig{Clock: clock, Bus: bus})
	b := mustEndpoint(t, m, "svc").Breaker()
	if err := m.Reconfigure("svc", EndpointConfig{Breaker: &BreakerConfig{Disabled: true}}); err != nil {
		t.Fatal(err)
	}
	if b.State() != events.Disabled {
		t.Fatalf("state %v", b.State())
	}
	if err := m.Reconfigure("svc", EndpointConfig{}); err != nil {
		t.Fatal(err)
	}
	if b.State() != events.Closed {
		t.Fatalf("state %v after enabling", b.State())
	}
	if n := len(sub.C()); n != 2 {
		t.Fatalf("%d events, want 2 transitions", n)
	}
	err := m.Reconfigure("svc", EndpointConfig{Breaker: &BreakerConfig{FailureThreshold: -1}})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "core.EndpointConfig.Breaker.FailureThreshold" {
		t.Fatalf("err = %v", err)
	}
	if b.Config().FailureThreshold != 5 {
		t.Fatal("a refused configuration was applied")
	}
	// A configuration given for an endpoint not made yet applies when it is.
	if err := m.Reconfigure("later", EndpointConfig{Breaker: &BreakerConfig{FailureThreshold: 9}}); err != nil {
		t.Fatal(err)
	}
	if got := mustEndpoint(t, m, "later").Breaker().Config().FailureThreshold; got != 9 {
		t.Fatalf("FailureThreshold %d, want 9", got)
	}
}

// Another instance renewing a component's lease is no transition here.
func TestApplyRemoteRenewalIsSilent(t *testing.T) {
	b, clock, sub := newTestBreaker(t, BreakerConfig{})
	r := ReplicationOf(b)
	held := Snapshot{State: events.ForcedOpen, Reason: "held by health db: down", HeldBy: "health db", HoldUntil: clock.Now().Add(time.Minute)}
	if !r.ApplyRemote(held) {
		t.Fatal("first ApplyRemote changed nothing")
	}
	<-sub.C()
	held.HoldUntil = held.HoldUntil.Add(time.Minute)
	if !r.ApplyRemote(held) {
		t.Fatal("a renewal was ignored")
	}
	if n := len(sub.C()); n != 0 {
		t.Fatalf("a renewal published %d events", n)
	}
	if got := b.Snapshot().HoldUntil; !got.Equal(held.HoldUntil) {
		t.Fatalf("HoldUntil %v, want %v", got, held.HoldUntil)
	}
	clock.Advance(90 * time.Second) // past the first lease, within the renewed one
	if b.State() != events.ForcedOpen || b.Snapshot().State != events.ForcedOpen {
		t.Fatal("the renewed lease lapsed early")
	}
}

// The newer policies come from the endpoint's configuration like the
// others: present only where configured, inherited, turned off per
// endpoint, kept across a reconfiguration.
func TestEndpointPolicies(t *testing.T) {
	clock := NewFakeClock(t0)
	m, err := NewManager(ManagerConfig{
		Clock: clock,
		Defaults: EndpointConfig{
			RateLimit: &RateLimitConfig{Rate: 10},
			Timeout:   &TimeoutConfig{Request: time.Second},
		},
		Endpoints: map[string]EndpointConfig{
			"out":  {Adaptive: &AdaptiveConfig{}, Hedge: &HedgeConfig{Delay: 20 * time.Millisecond}, Timeout: &TimeoutConfig{Attempt: 100 * time.Millisecond}},
			"free": {RateLimit: &RateLimitConfig{Disabled: true}, Timeout: &TimeoutConfig{Disabled: true}},
		},
		PerUserRateLimit: &PerUserRateLimitConfig{},
	})
	if err != nil {
		t.Fatal(err)
	}
	in, out, free := mustEndpoint(t, m, "in"), mustEndpoint(t, m, "out"), mustEndpoint(t, m, "free")
	if in.RateLimiter() == nil || in.Adaptive() != nil || in.Timeout().Request != time.Second || in.Timeout().Status != 503 {
		t.Fatalf("in: rate %v adaptive %v timeout %+v", in.RateLimiter(), in.Adaptive(), in.Timeout())
	}
	if out.Adaptive() == nil || out.Timeout() != (TimeoutConfig{Attempt: 100 * time.Millisecond, Status: 503}) {
		t.Fatalf("out: adaptive %v timeout %+v", out.Adaptive(), out.Timeout())
	}
	if d, ok := out.HedgeDelay(); !ok || d != 20*time.Millisecond {
		t.Fatalf("out: hedge %v %v", d, ok)
	}
	if _, ok := in.HedgeDelay(); ok || in.Hedge() {
		t.Fatal("in hedges without a HedgeConfig")
	}
	if err := free.RateLimiter().Allow(); err != nil || free.Timeout() != (TimeoutConfig{}) {
		t.Fatalf("free: %v %+v", err, free.Timeout())
	}
	if m.PerUserRateLimiter() == nil {
		t.Fatal("no per-user rate limiter")
	}
	rl := in.RateLimiter()
	if err := m.Reconfigure("in", EndpointConfig{RateLimit: &RateLimitConfig{Rate: 20}, Adaptive: &AdaptiveConfig{}}); err != nil {
		t.Fatal(err)
	}
	if in.RateLimiter() != rl || in.RateLimiter().Stats().Rate != 20 || in.Adaptive() == nil {
		t.Fatalf("after Reconfigure: same limiter %v, rate %v, adaptive %v", in.RateLimiter() == rl, in.RateLimiter().Stats().Rate, in.Adaptive())
	}
	// A shared limit is the same limiter, marked for a store to share;
	// alone it allows the whole rate.
	if err := m.Reconfigure("in", EndpointConfig{RateLimit: &RateLimitConfig{Rate: 30, Shared: true}}); err != nil {
		t.Fatal(err)
	}
	if st := in.RateLimiter().Stats(); in.RateLimiter() != rl || !in.Config().RateLimit.Shared || st.Rate != 30 || st.Share != 1 {
		t.Fatalf("shared: same limiter %v, config %+v, stats %+v", in.RateLimiter() == rl, in.Config().RateLimit, st)
	}
	// The hedge budget: 10% of the calls counted.
	out.breaker.Reset()
	hedged := 0
	for range 100 {
		if _, ok := out.HedgeDelay(); ok && out.Hedge() {
			hedged++
		}
	}
	if hedged < 9 || hedged > 12 {
		t.Fatalf("%d of 100 calls hedged, want about 10", hedged)
	}
	out.breaker.Trip("test")
	if _, ok := out.HedgeDelay(); ok {
		t.Fatal("hedging while the breaker is open")
	}
}

// Without a fixed Delay, the hedge waits for the endpoint's recent 95th
// percentile latency.
func TestHedgeDelayFollowsRecentLatency(t *testing.T) {
	clock := NewFakeClock(t0)
	m, _ := NewManager(ManagerConfig{Clock: clock, Defaults: EndpointConfig{Hedge: &HedgeConfig{}}})
	e := mustEndpoint(t, m, "out")
	if d, _ := e.HedgeDelay(); d != 10*time.Millisecond {
		t.Fatalf("with no latency yet: %v, want 10ms", d)
	}
	for i := range 100 {
		d := 2 * time.Millisecond
		if i%20 == 0 {
			d = 200 * time.Millisecond
		}
		e.ObserveDuration(d)
	}
	if d, _ := e.HedgeDelay(); d != 5*time.Millisecond {
		t.Fatalf("p95 of mostly 2ms calls: %v, want the 5ms bucket", d)
	}
}

// Hedges counts the hedged attempts Hedge allowed, through a
// reconfiguration, and none once the breaker left Closed.
func TestHedgesCounted(t *testing.T) {
	m, _ := NewManager(ManagerConfig{Clock: NewFakeClock(t0), Defaults: EndpointConfig{Hedge: &HedgeConfig{Delay: time.Millisecond, MaxRatio: 1}}})
	e := mustEndpoint(t, m, "out")
	for range 3 {
		if _, ok := e.HedgeDelay(); !ok || !e.Hedge() {
			t.Fatal("a hedge refused within the budget")
		}
	}
	if err := m.Reconfigure("out", EndpointConfig{Hedge: &HedgeConfig{Delay: 2 * time.Millisecond, MaxRatio: 1}}); err != nil {
		t.Fatal(err)
	}
	e.HedgeDelay()
	e.Hedge()
	e.Breaker().Trip("test")
	if e.Hedge() {
		t.Fatal("hedged with the breaker open")
	}
	if n := e.Hedges(); n != 4 {
		t.Fatalf("Hedges() = %d, want 4", n)
	}
}
