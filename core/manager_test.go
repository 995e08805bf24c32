package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

func mustEndpoint(t testing.TB, m *Manager, name string) *Endpoint {
	t.Helper()
	e, err := m.Endpoint(name)
	if err != nil {
		t.Fatalf("Endpoint(%q): %v", name, err)
	}
	return e
}

func TestManagerEndpointsWithDefaultsAndOverrides(t *testing.T) {
	clock := NewFakeClock(t0)
	m, err := NewManager(ManagerConfig{
		Defaults: EndpointConfig{
			Breaker:  &BreakerConfig{FailureThreshold: 3, Timeout: 10 * time.Second},
			Bulkhead: &BulkheadConfig{MaxConcurrentRequests: 7},
			SLO:      &SLOConfig{TargetSuccessRate: 0.9},
		},
		Endpoints: map[string]EndpointConfig{
			// Replaces the default breaker as a whole; inherits the rest.
			"GET /slow": {Breaker: &BreakerConfig{Timeout: 5 * time.Second}},
			// Replaces the bulkhead and the SLO; inherits the breaker.
			"POST /upload": {Bulkhead: &BulkheadConfig{MaxConcurrentRequests: 2}, SLO: &SLOConfig{TargetSuccessRate: 0.999}},
		},
		Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	a := mustEndpoint(t, m, "GET /users/{id}")
	if again := mustEndpoint(t, m, "GET /users/{id}"); again != a {
		t.Fatal("a second Endpoint made a new endpoint")
	}
	if a.Name() != "GET /users/{id}" || a.Breaker().Name() != a.Name() || a.Bulkhead().name != a.Name() {
		t.Fatalf("names %q %q %q", a.Name(), a.Breaker().Name(), a.Bulkhead().name)
	}
	if c := a.Breaker().Config(); c.FailureThreshold != 3 || c.Timeout != 10*time.Second || c.Clock != clock || c.Bus != m.Bus() {
		t.Fatalf("default breaker %+v", c)
	}
	if c := a.Bulkhead().cfg.Load(); c.MaxConcurrentRequests != 7 || c.Clock != clock {
		t.Fatalf("default bulkhead %+v", c)
	}
	if c := a.SLO().cfg; c.TargetSuccessRate != 0.9 || c.Clock != clock {
		t.Fatalf("default SLO %+v", c)
	}

	slow := mustEndpoint(t, m, "GET /slow")
	if c := slow.Breaker().Config(); c.Timeout != 5*time.Second || c.FailureThreshold != 5 {
		t.Fatalf("override breaker %+v: want Timeout 5s and the built-in FailureThreshold 5, not the Defaults' 3", c)
	}
	if slow.Bulkhead().cfg.Load().MaxConcurrentRequests != 7 || slow.SLO().cfg.TargetSuccessRate != 0.9 {
		t.Fatal("an override's nil policies did not inherit Defaults")
	}
	up := mustEndpoint(t, m, "POST /upload")
	if c := up.Breaker().Config(); c.FailureThreshold != 3 || c.Timeout != 10*time.Second {
		t.Fatalf("inherited breaker %+v", c)
	}
	if up.Bulkhead().cfg.Load().MaxConcurrentRequests != 2 || up.SLO().cfg.TargetSuccessRate != 0.999 {
		t.Fatal("override bulkhead or SLO not applied")
	}
	if up.Bulkhead() == a.Bulkhead() || up.SLO() == a.SLO() || up.Breaker() == a.Breaker() {
		t.Fatal("endpoints share a policy")
	}

	if _, ok := m.Lookup("GET /nope"); ok {
		t.Fatal("Lookup created an endpoint")
	}
	if e, ok := m.Lookup("GET /slow"); !ok || e != slow {
		t.Fatal("Lookup lost an endpoint")
	}
	var names []string
	for _, e := range m.Endpoints() {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "GET /slow,GET /users/{id},POST /upload" {
		t.Fatalf("Endpoints() = %v", names)
	}
	if m.Clock() != clock || m.PerUser() != nil {
		t.Fatal("Clock or PerUser")
	}
	// Every endpoint's retry goes through its own breaker, on the
	// Manager's clock.
	if rc := a.Retry().cfg; rc.Breaker != a.Breaker() || rc.Clock != clock || rc.MaxAttempts != 3 {
		t.Fatalf("retry %+v", rc)
	}
}

func TestManagerZeroConfig(t *testing.T) {
	m, err := NewManager(ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e := mustEndpoint(t, m, "api")
	if e.Bulkhead() != nil || e.SLO() != nil || m.PerUser() != nil || m.Bus() == nil || m.Clock() != SystemClock() {
		t.Fatalf("zero Manager: bulkhead %v, SLO %v, per-user %v, bus %v", e.Bulkhead(), e.SLO(), m.PerUser(), m.Bus())
	}
	c := e.Config()
	if c.Bulkhead != nil || c.SLO != nil || c.Breaker == nil || c.Breaker.FailureThreshold != 5 || c.Breaker.Name != "api" {
		t.Fatalf("Config() = %+v", c)
	}
}

// Every component publishes on the Manager's bus.
func TestManagerBus(t *testing.T) {
	bus := events.NewBus()
	sub := bus.Subscribe(16)
	defer sub.Close()
	m, _ := NewManager(ManagerConfig{Bus: bus, Clock: NewFakeClock(t0)})
	if m.Bus() != bus {
		t.Fatal("Bus() is not the configured bus")
	}
	mustEndpoint(t, m, "GET /a").Breaker().ForceOpen("drill")
	e := (<-sub.C()).(events.StateChange)
	if e.Endpoint != "GET /a" || e.NewState != events.ForcedOpen || !e.Timestamp.Equal(t0) {
		t.Fatalf("event %+v", e)
	}
}

// What Config returns is a copy: changing it changes nothing in the
// Manager, for this endpoint or the next.
func TestEndpointConfigIsACopy(t *testing.T) {
	m, _ := NewManager(ManagerConfig{Defaults: EndpointConfig{
		Bulkhead: &BulkheadConfig{MaxConcurrentRequests: 7},
		SLO:      &SLOConfig{TargetSuccessRate: 0.9},
	}})
	a := mustEndpoint(t, m, "a")
	c := a.Config()
	c.Breaker.FailureThreshold = 1
	c.Bulkhead.MaxConcurrentRequests = 1
	c.SLO.TargetSuccessRate = 0.5
	c.Retry.MaxAttempts = 1
	b := mustEndpoint(t, m, "b")
	for _, e := range []*Endpoint{a, b} {
		c := e.Config()
		if c.Breaker.FailureThreshold != 5 || c.Bulkhead.MaxConcurrentRequests != 7 || c.SLO.TargetSuccessRate != 0.9 || c.Retry.MaxAttempts != 3 {
			t.Fatalf("%s: changing a returned Config changed the Manager: %+v %+v %+v %+v", e.Name(), *c.Breaker, *c.Bulkhead, *c.SLO, *c.Retry)
		}
	}
	if b.Bulkhead().cfg.Load().MaxConcurrentRequests != 7 || b.SLO().cfg.TargetSuccessRate != 0.9 {
		t.Fatal("a later endpoint got the changed config")
	}
}

func TestManagerIsBounded(t *testing.T) {
	m, err := NewManager(ManagerConfig{MaxEndpoints: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		mustEndpoint(t, m, fmt.Sprint("e", i))
	}
	if e, err := m.Endpoint("e3"); !errors.Is(err, ErrTooManyEndpoints) || e != nil {
		t.Fatalf("4th endpoint: %v, %v", e, err)
	}
	mustEndpoint(t, m, "e1") // existing ones still served
	if n := len(m.Endpoints()); n != 3 {
		t.Fatalf("%d endpoints", n)
	}
	// The refusal on a flood of new names costs no allocation.
	if n := testing.AllocsPerRun(100, func() { _, _ = m.Endpoint("e-new") }); n != 0 {
		t.Fatalf("%v allocations per refused endpoint", n)
	}
	// The default bound.
	m, _ = NewManager(ManagerConfig{})
	for i := range 1000 {
		mustEndpoint(t, m, fmt.Sprint("e", i))
	}
	if _, err := m.Endpoint("one too many"); !errors.Is(err, ErrTooManyEndpoints) {
		t.Fatalf("endpoint 1001: %v", err)
	}
}

func TestManagerRejectsBadNames(t *testing.T) {
	m, _ := NewManager(ManagerConfig{})
	for _, name := range []string{"", strings.Repeat("x", 257), "a\x00b", "bad\xff", "tab\there"} {
		if _, err := m.Endpoint(name); !errors.Is(err, ErrInvalidEndpoint) {
			t.Errorf("%q: %v", name, err)
		}
		if err := ValidateEndpoint(name); !errors.Is(err, ErrInvalidEndpoint) {
			t.Errorf("ValidateEndpoint(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"GET /users/{id}", strings.Repeat("x", 256), "payments:443", "grüße"} {
		if err := ValidateEndpoint(name); err != nil {
			t.Errorf("ValidateEndpoint(%q) = %v", name, err)
		}
	}
	if len(m.Endpoints()) != 0 {
		t.Fatal("a bad name made an endpoint")
	}
}

// OnEndpoint sees every endpoint once, and a new one before anyone else
// can use it.
func TestOnEndpointSeesEveryEndpointOnce(t *testing.T) {
	clock := NewFakeClock(t0)
	m, _ := NewManager(ManagerConfig{Clock: clock})
	mustEndpoint(t, m, "a")
	seen := map[string]int{}
	m.OnEndpoint(func(e *Endpoint) {
		seen[e.Name()]++
		// A store restores saved state here.
		_ = ReplicationOf(e.Breaker()).Restore(Snapshot{State: events.Open, OpenUntil: clock.Now().Add(time.Minute), Reason: "saved"})
	})
	b := mustEndpoint(t, m, "b")
	mustEndpoint(t, m, "b")
	if seen["a"] != 1 || seen["b"] != 1 || len(seen) != 2 {
		t.Fatalf("seen %v", seen)
	}
	if b.Breaker().State() != events.Open {
		t.Fatalf("the hook did not run before Endpoint returned: %s", b.Breaker().State())
	}
	// Hooks add up, in order.
	var order []string
	m.OnEndpoint(func(e *Endpoint) { order = append(order, "2:"+e.Name()) })
	m.OnEndpoint(func(e *Endpoint) { order = append(order, "3:"+e.Name()) })
	mustEndpoint(t, m, "c")
	if got := strings.Join(order, " "); got != "2:a 2:b 3:a 3:b 2:c 3:c" {
		t.Fatalf("hook calls %s", got)
	}
	if seen["c"] != 1 {
		t.Fatal("the first hook missed a later endpoint")
	}
}

func TestManagerPerUser(t *testing.T) {
	clock := NewFakeClock(t0)
	m, err := NewManager(ManagerConfig{
		PerUser: &PerUserConfig{Bulkhead: BulkheadConfig{MaxConcurrentRequests: 1, QueueTimeout: time.Second}, MaxUsers: 8},
		Clock:   clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := m.PerUser()
	if p == nil || p.cfg.MaxUsers != 8 || p.cfg.Clock != clock || p.cfg.Bulkhead.Clock != clock {
		t.Fatalf("PerUser %+v", p)
	}
	held, err := p.TryAcquire("alice")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	// The queue runs on the Manager's clock.
	errc := make(chan error, 1)
	go func() {
		_, err := p.Acquire(context.Background(), "alice")
		errc <- err
	}()
	if !clock.WaitForTimers(1, timerWait) {
		t.Fatal("never queued on the Manager's clock")
	}
	clock.Advance(time.Second)
	if err := <-errc; !errors.Is(err, ErrBulkheadTimeout) {
		t.Fatalf("Acquire = %v", err)
	}
}

// An endpoint's bulkhead refuses with its name and RetryAfter.
func TestEndpointBulkheadRejection(t *testing.T) {
	m, _ := NewManager(ManagerConfig{Defaults: EndpointConfig{
		Bulkhead: &BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: NoQueue, RetryAfter: 5 * time.Second},
	}})
	e := mustEndpoint(t, m, "POST /upload")
	g, _ := e.Bulkhead().TryAcquire()
	defer g.Release()
	_, err := e.Bulkhead().TryAcquire()
	var re *RejectedError
	if !errors.As(err, &re) || re.Endpoint != "POST /upload" || re.RetryAfter() != 5*time.Second || !errors.Is(err, ErrBulkheadFull) {
		t.Fatalf("rejection %v", err)
	}
}

func TestEndpointDurations(t *testing.T) {
	m, _ := NewManager(ManagerConfig{})
	a, b := mustEndpoint(t, m, "a"), mustEndpoint(t, m, "b")
	for _, d := range []time.Duration{time.Millisecond, 20 * time.Millisecond, 3 * time.Second, time.Minute} {
		a.ObserveDuration(d)
	}
	s := a.Durations()
	if s.Count != 4 || s.Sum != time.Millisecond+20*time.Millisecond+3*time.Second+time.Minute {
		t.Fatalf("durations %+v", s)
	}
	// le=5ms: 1; le=25ms: 2; le=5s: 3; the minute only in Count.
	if s.Buckets[0] != 1 || s.Buckets[2] != 2 || s.Buckets[8] != 2 || s.Buckets[9] != 3 || s.Buckets[10] != 3 {
		t.Fatalf("buckets %v", s.Buckets)
	}
	if b.Durations().Count != 0 {
		t.Fatal("endpoints share a histogram")
	}
	if n := testing.AllocsPerRun(1000, func() { a.ObserveDuration(time.Millisecond) }); n != 0 {
		t.Fatalf("%v allocations per observation", n)
	}
}

// Endpoints made at once from many goroutines are made once each.
func TestManagerConcurrentEndpoints(t *testing.T) {
	m, _ := NewManager(ManagerConfig{MaxEndpoints: 50})
	var made [8][]*Endpoint
	done := make(chan int)
	for g := range 8 {
		go func() {
			for i := range 100 {
				e, err := m.Endpoint(fmt.Sprint("e", i%60))
				if err != nil && !errors.Is(err, ErrTooManyEndpoints) {
					t.Error(err)
				}
				if e != nil {
					made[g] = append(made[g], e)
				}
			}
			done <- g
		}()
	}
	for range 8 {
		<-done
	}
	if n := len(m.Endpoints()); n != 50 {
		t.Fatalf("%d endpoints, bound 50", n)
	}
	for _, es := range made {
		for _, e := range es {
			if got, ok := m.Lookup(e.Name()); !ok || got != e {
				t.Fatalf("two endpoints named %q", e.Name())
			}
		}
	}
}
