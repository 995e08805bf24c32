package core

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// faultManager returns a Manager with fault injection on, on a FakeClock,
// and a subscription to its bus. Experiments still running when the test
// ends are stopped, so that the watcher goroutine ends with the test.
func faultManager(t *testing.T, cfg ManagerConfig) (*Manager, *FakeClock, *events.Subscription) {
	t.Helper()
	clock := NewFakeClock(t0)
	cfg.Clock = clock
	if cfg.Faults == nil {
		cfg.Faults = &FaultLimits{}
	}
	if cfg.Bus == nil {
		cfg.Bus = events.NewBus()
	}
	sub := cfg.Bus.Subscribe(1024)
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, f := range m.Faults() {
			m.StopFault(f.ID)
		}
		sub.Close()
	})
	return m, clock, sub
}

// nextFault returns the next FaultChange on sub, skipping other events.
func nextFault(t *testing.T, sub *events.Subscription) events.FaultChange {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-sub.C():
			if fc, ok := e.(events.FaultChange); ok {
				return fc
			}
		case <-timeout:
			t.Fatal("no FaultChange published")
		}
	}
}

// noFault fails if sub holds a FaultChange.
func noFault(t *testing.T, sub *events.Subscription) {
	t.Helper()
	for {
		select {
		case e := <-sub.C():
			if fc, ok := e.(events.FaultChange); ok {
				t.Fatalf("unexpected %+v", fc)
			}
		default:
			return
		}
	}
}

func startFault(t *testing.T, m *Manager, f Fault) Fault {
	t.Helper()
	got, err := m.StartFault(f)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestStartFaultWhileOff(t *testing.T) {
	m, err := NewManager(ManagerConfig{Clock: NewFakeClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartFault(Fault{Endpoint: "GET /x", Percent: 50, Status: 500}); !errors.Is(err, ErrFaultsDisabled) {
		t.Fatalf("err = %v, want ErrFaultsDisabled", err)
	}
	if fs := m.Faults(); fs != nil {
		t.Fatalf("Faults = %v", fs)
	}
	if _, ok := m.StopFault("x"); ok {
		t.Fatal("stopped a fault while off")
	}
	if _, ok := m.FaultLimits(); ok {
		t.Fatal("FaultLimits reports on")
	}
	if f, _ := mustEndpointOf(t, m, "GET /x").Inject(nil, nil); f != nil {
		t.Fatalf("injected %+v while off", f)
	}
}

func mustEndpointOf(t *testing.T, m *Manager, name string) *Endpoint {
	t.Helper()
	e, err := m.Endpoint(name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestFaultLimitsDefaults(t *testing.T) {
	m, _, _ := faultManager(t, ManagerConfig{})
	l, ok := m.FaultLimits()
	if !ok || l.DefaultDuration != 10*time.Minute || l.MaxDuration != time.Hour || l.MaxFaults != 64 || l.Experiments != nil {
		t.Fatalf("limits %+v %v", l, ok)
	}
	short, _, _ := faultManager(t, ManagerConfig{Faults: &FaultLimits{MaxDuration: time.Minute}})
	if l, _ := short.FaultLimits(); l.DefaultDuration != time.Minute {
		t.Fatalf("a MaxDuration under 10m is the default: %+v", l)
	}
}

// A started experiment is listed, published and stopped; it is found by
// the calls of its endpoint only.
func TestStartListStopFault(t *testing.T) {
	m, _, sub := faultManager(t, ManagerConfig{})
	f := startFault(t, m, Fault{Endpoint: "GET /x", Percent: 100, Status: 503, Reason: "game day"})
	if len(f.ID) != 16 || f.Duration != 10*time.Minute || !f.Ends.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("started %+v", f)
	}
	start := nextFault(t, sub)
	want := events.FaultChange{Type: events.TypeFaultStart, ID: f.ID, Endpoint: "GET /x", Percent: 100, Status: 503,
		Ends: f.Ends, Reason: "game day", Timestamp: t0}
	if start != want {
		t.Fatalf("start event %+v\nwant %+v", start, want)
	}
	x, other := mustEndpointOf(t, m, "GET /x"), mustEndpointOf(t, m, "GET /y")
	for range 3 {
		if got, _ := x.Inject(nil, nil); got == nil || got.ID != f.ID || got.Status != 503 {
			t.Fatalf("GET /x got %+v", got)
		}
	}
	if got, _ := other.Inject(nil, nil); got != nil {
		t.Fatalf("GET /y got %+v", got)
	}
	if fs := m.Faults(); len(fs) != 1 || fs[0].ID != f.ID || fs[0].Injected != 3 {
		t.Fatalf("Faults = %+v", fs)
	}
	stopped, ok := m.StopFault(f.ID)
	if !ok || stopped.Injected != 3 {
		t.Fatalf("StopFault = %+v %v", stopped, ok)
	}
	end := nextFault(t, sub)
	if end.Type != events.TypeFaultEnd || end.ID != f.ID || end.Reason != "stopped" || end.Injected != 3 {
		t.Fatalf("end event %+v", end)
	}
	if got, _ := x.Inject(nil, nil); got != nil {
		t.Fatalf("injected after the stop: %+v", got)
	}
	if _, ok := m.StopFault(f.ID); ok {
		t.Fatal("stopped twice")
	}
	if fs := m.Faults(); len(fs) != 0 {
		t.Fatalf("Faults after the stop = %+v", fs)
	}
	noFault(t, sub)
}

// Faults lists by Ends, then ID; an endpoint's calls meet its experiments
// in the order they started.
func TestFaultsOrder(t *testing.T) {
	m, _, _ := faultManager(t, ManagerConfig{})
	startFault(t, m, Fault{ID: "late", Endpoint: "GET /x", Percent: 100, Status: 500, Duration: time.Hour})
	startFault(t, m, Fault{ID: "b", Endpoint: "GET /x", Percent: 100, Status: 502, Duration: time.Minute})
	startFault(t, m, Fault{ID: "a", Endpoint: "GET /y", Percent: 100, Status: 503, Duration: time.Minute})
	var ids []string
	for _, f := range m.Faults() {
		ids = append(ids, f.ID)
	}
	if fmt.Sprint(ids) != "[a b late]" {
		t.Fatalf("order %v", ids)
	}
	if f, _ := mustEndpointOf(t, m, "GET /x").Inject(nil, nil); f.ID != "late" {
		t.Fatalf("the first experiment started applies first, got %s", f.ID)
	}
}

// An experiment ends by itself at Ends, with one event, though no call
// comes; one that ends later is left running, and the earlier end of one
// started later is not missed.
func TestFaultExpiresWithoutTraffic(t *testing.T) {
	m, clock, sub := faultManager(t, ManagerConfig{})
	long := startFault(t, m, Fault{Endpoint: "GET /x", Percent: 100, Latency: time.Second, Duration: 10 * time.Minute})
	short := startFault(t, m, Fault{Endpoint: "GET /y", Percent: 100, Abort: true, Duration: time.Minute})
	nextFault(t, sub)
	nextFault(t, sub)
	if !clock.WaitForTimers(1, 5*time.Second) {
		t.Fatal("no timer armed")
	}
	clock.Advance(time.Minute)
	end := nextFault(t, sub)
	if end.Type != events.TypeFaultEnd || end.ID != short.ID || end.Reason != "expired" || !end.Ends.Equal(t0.Add(time.Minute)) {
		t.Fatalf("end %+v", end)
	}
	if fs := m.Faults(); len(fs) != 1 || fs[0].ID != long.ID {
		t.Fatalf("still running: %+v", fs)
	}
	noFault(t, sub)
	if !clock.WaitForTimers(1, 5*time.Second) {
		t.Fatal("no timer for the next end")
	}
	clock.Advance(9 * time.Minute)
	if end := nextFault(t, sub); end.ID != long.ID || end.Reason != "expired" {
		t.Fatalf("end %+v", end)
	}
	clock.Advance(time.Hour)
	if fs := m.Faults(); len(fs) != 0 {
		t.Fatalf("running after both ended: %+v", fs)
	}
	noFault(t, sub)
}

// A call after Ends gets nothing, whether or not the timer has been seen
// to fire; the listing then ends the experiment, once.
func TestFaultEndsAtEndsForCalls(t *testing.T) {
	m, clock, sub := faultManager(t, ManagerConfig{})
	f := startFault(t, m, Fault{Endpoint: "GET /x", Percent: 100, Status: 500, Duration: time.Minute})
	nextFault(t, sub)
	e := mustEndpointOf(t, m, "GET /x")
	clock.Advance(time.Minute - time.Millisecond)
	if got, _ := e.Inject(nil, nil); got == nil {
		t.Fatal("no fault a millisecond before the end")
	}
	clock.Advance(time.Millisecond)
	if got, _ := e.Inject(nil, nil); got != nil {
		t.Fatalf("fault at the end: %+v", got)
	}
	if fs := m.Faults(); len(fs) != 0 {
		t.Fatalf("listed after its end: %+v", fs)
	}
	if end := nextFault(t, sub); end.ID != f.ID || end.Reason != "expired" || end.Injected != 1 {
		t.Fatalf("end %+v", end)
	}
	noFault(t, sub)
}

func TestFaultFilters(t *testing.T) {
	m, _, _ := faultManager(t, ManagerConfig{})
	startFault(t, m, Fault{ID: "valued", Endpoint: "GET /x", Percent: 100, Status: 500, Header: "X-Chaos", HeaderValue: "on"})
	startFault(t, m, Fault{ID: "any", Endpoint: "GET /x", Percent: 100, Status: 502, Header: "X-Any"})
	startFault(t, m, Fault{ID: "ann", Endpoint: "GET /x", Percent: 100, Status: 503, User: "ann"})
	e := mustEndpointOf(t, m, "GET /x")
	headers := func(h map[string]string) func(string) string { return func(k string) string { return h[k] } }
	userCalls := 0
	user := func(u string) func() string { return func() string { userCalls++; return u } }
	for _, tc := range []struct {
		name   string
		header func(string) string
		user   func() string
		want   string
	}{
		{"nothing", nil, nil, ""},
		{"the value", headers(map[string]string{"X-Chaos": "on"}), nil, "valued"},
		{"another value", headers(map[string]string{"X-Chaos": "off"}), nil, ""},
		{"any value", headers(map[string]string{"X-Any": "1"}), nil, "any"},
		{"the user", nil, user("ann"), "ann"},
		{"another user", headers(map[string]string{}), user("bob"), ""},
	} {
		userCalls = 0
		f, _ := e.Inject(tc.header, tc.user)
		got := ""
		if f != nil {
			got = f.ID
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if userCalls > 1 {
			t.Errorf("%s: user asked %d times", tc.name, userCalls)
		}
	}
}

// Percent chooses that share of the calls, independently for each call.
func TestFaultPercent(t *testing.T) {
	m, _, _ := faultManager(t, ManagerConfig{})
	startFault(t, m, Fault{Endpoint: "GET /x", Percent: 30, Latency: time.Millisecond, LatencyMax: 5 * time.Millisecond})
	e := mustEndpointOf(t, m, "GET /x")
	const n = 50_000
	hits := 0
	for range n {
		f, d := e.Inject(nil, nil)
		if f == nil {
			continue
		}
		hits++
		if d < time.Millisecond || d >= 5*time.Millisecond {
			t.Fatalf("delay %v outside [1ms, 5ms)", d)
		}
	}
	// The binomial's standard deviation is about 0.2% of n: 2% is ten.
	if share := float64(hits) / n; math.Abs(share-0.30) > 0.02 {
		t.Fatalf("%d of %d calls (%.3f) got the fault, want about 0.30", hits, n, share)
	}
	if s := e.Breaker().Snapshot(); s.InjectedLatency != int64(hits) || s.TotalRequests != 0 {
		t.Fatalf("latency counted %d times, want %d; total %d", s.InjectedLatency, hits, s.TotalRequests)
	}
	if fs := m.Faults(); fs[0].Injected != int64(hits) {
		t.Fatalf("Injected %d, want %d", fs[0].Injected, hits)
	}
}

// Injected failures open the breaker as real ones do, and are counted
// apart from them.
func TestInjectedFailuresOpenTheBreaker(t *testing.T) {
	m, _, _ := faultManager(t, ManagerConfig{Defaults: EndpointConfig{Breaker: &BreakerConfig{FailureThreshold: 3, Timeout: time.Minute}}})
	e := mustEndpointOf(t, m, "GET /x")
	p, _ := e.Breaker().Allow()
	p.Report(Failure, 0) // one real failure
	f := startFault(t, m, Fault{Endpoint: "GET /x", Percent: 100, Status: 500})
	for range 2 {
		e.Inject(nil, nil)
	}
	s := e.Breaker().Snapshot()
	if s.State != events.Open || s.InjectedFailures != 2 || s.FailedRequests != 1 || s.TotalRequests != 1 ||
		s.SuccessfulRequests != 0 || s.InjectedStatus != 2 || s.WindowFailures != 3 {
		t.Fatalf("snapshot %+v", s)
	}
	m.StopFault(f.ID)
	// Aborts too; a status under 500 is a success; latency alone records
	// nothing.
	e.Breaker().Reset()
	startFault(t, m, Fault{ID: "abort", Endpoint: "GET /x", Percent: 100, Abort: true})
	e.Inject(nil, nil)
	m.StopFault("abort")
	startFault(t, m, Fault{ID: "404", Endpoint: "GET /x", Percent: 100, Status: 404, Latency: time.Second})
	e.Inject(nil, nil)
	m.StopFault("404")
	startFault(t, m, Fault{ID: "slow", Endpoint: "GET /x", Percent: 100, Latency: time.Second})
	e.Inject(nil, nil)
	s = e.Breaker().Snapshot()
	if s.State != events.Closed || s.InjectedFailures != 3 || s.InjectedAbort != 1 || s.InjectedStatus != 3 || s.InjectedLatency != 2 ||
		s.TotalRequests != 2 || s.SuccessfulRequests != 1 || s.FailedRequests != 1 || s.WindowRequests != 2 || s.WindowFailures != 1 {
		t.Fatalf("snapshot %+v", s)
	}
}

// In HalfOpen an injected failure reopens the breaker; an injected success
// is no probe and closes nothing.
func TestInjectedCallsInHalfOpen(t *testing.T) {
	m, clock, _ := faultManager(t, ManagerConfig{Defaults: EndpointConfig{Breaker: &BreakerConfig{Timeout: time.Second, SuccessThreshold: 1}}})
	e := mustEndpointOf(t, m, "GET /x")
	b := e.Breaker()
	b.Trip("test")
	clock.Advance(time.Second)
	b.Snapshot() // to HalfOpen
	startFault(t, m, Fault{ID: "ok", Endpoint: "GET /x", Percent: 100, Status: 404})
	e.Inject(nil, nil)
	if st := b.State(); st != events.HalfOpen {
		t.Fatalf("an injected success moved the breaker to %v", st)
	}
	m.StopFault("ok")
	startFault(t, m, Fault{ID: "fail", Endpoint: "GET /x", Percent: 100, Status: 500})
	e.Inject(nil, nil)
	if s := b.Snapshot(); s.State != events.Open || s.InjectedFailures != 1 || s.FailedRequests != 0 {
		t.Fatalf("after an injected failure: %+v", s)
	}
}

func TestStartFaultLimits(t *testing.T) {
	m, _, _ := faultManager(t, ManagerConfig{Faults: &FaultLimits{MaxFaults: 2, MaxDuration: time.Hour}, MaxEndpoints: 3})
	startFault(t, m, Fault{ID: "one", Endpoint: "GET /x", Percent: 1, Status: 500})
	var ce *ConfigError
	if _, err := m.StartFault(Fault{ID: "one", Endpoint: "GET /y", Percent: 1, Status: 500}); !errors.As(err, &ce) || ce.Field != "core.Fault.ID" {
		t.Fatalf("a running ID: %v", err)
	}
	startFault(t, m, Fault{ID: "two", Endpoint: "GET /x", Percent: 1, Status: 500})
	if _, err := m.StartFault(Fault{ID: "three", Endpoint: "GET /x", Percent: 1, Status: 500}); !errors.As(err, &ce) || ce.Field != "core.ManagerConfig.Faults.MaxFaults" {
		t.Fatalf("past MaxFaults: %v", err)
	}
	m.StopFault("two")
	if _, err := m.StartFault(Fault{Endpoint: "GET /x", Percent: 1, Status: 500, Duration: 2 * time.Hour}); !errors.As(err, &ce) || ce.Field != "core.Fault.Duration" {
		t.Fatalf("past MaxDuration: %v", err)
	}
	for _, name := range []string{"GET /y", "GET /z"} {
		mustEndpointOf(t, m, name)
	}
	if _, err := m.StartFault(Fault{Endpoint: "GET /new", Percent: 1, Status: 500}); !errors.Is(err, ErrTooManyEndpoints) {
		t.Fatalf("past MaxEndpoints: %v", err)
	}
}

// A replicated experiment keeps its ID, Ends and Origin; its events carry
// the Origin.
func TestStartFaultKeepsReplicatedFields(t *testing.T) {
	m, clock, sub := faultManager(t, ManagerConfig{})
	ends := t0.Add(90 * time.Second)
	f := startFault(t, m, Fault{ID: "shared-1", Endpoint: "GET /x", Percent: 10, Status: 500, Duration: 5 * time.Minute, Ends: ends, Origin: "web-2"})
	if f.ID != "shared-1" || !f.Ends.Equal(ends) || f.Origin != "web-2" || f.Duration != 5*time.Minute {
		t.Fatalf("started %+v", f)
	}
	if e := nextFault(t, sub); e.Origin != "web-2" || !e.Ends.Equal(ends) {
		t.Fatalf("start %+v", e)
	}
	clock.WaitForTimers(1, 5*time.Second)
	clock.Advance(90 * time.Second)
	if e := nextFault(t, sub); e.Type != events.TypeFaultEnd || e.Origin != "web-2" || e.Reason != "expired" {
		t.Fatalf("end %+v", e)
	}
}

// NewManager starts ManagerConfig.Faults.Experiments and publishes their
// starts on the given bus.
func TestManagerStartsConfiguredExperiments(t *testing.T) {
	m, _, sub := faultManager(t, ManagerConfig{Faults: &FaultLimits{Experiments: []Fault{
		{ID: "cfg", Endpoint: "GET /x", Percent: 50, Status: 500, Duration: 20 * time.Second},
		{Endpoint: "upstream", Percent: 100, Abort: true},
	}}})
	if e := nextFault(t, sub); e.ID != "cfg" || e.Type != events.TypeFaultStart {
		t.Fatalf("first start %+v", e)
	}
	if e := nextFault(t, sub); e.Endpoint != "upstream" {
		t.Fatalf("second start %+v", e)
	}
	if fs := m.Faults(); len(fs) != 2 || fs[0].ID != "cfg" || !fs[0].Ends.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("running %+v", fs)
	}
	// Past the endpoint bound, none is left running.
	bus := events.NewBus()
	_, err := NewManager(ManagerConfig{Clock: NewFakeClock(t0), Bus: bus, MaxEndpoints: 1, Faults: &FaultLimits{Experiments: []Fault{
		{Endpoint: "a", Percent: 1, Abort: true}, {Endpoint: "b", Percent: 1, Abort: true},
	}}})
	if !errors.Is(err, ErrTooManyEndpoints) {
		t.Fatalf("err = %v", err)
	}
}

// Calls, starts, stops and listings at once, under the race detector.
func TestFaultsConcurrently(t *testing.T) {
	m, clock, _ := faultManager(t, ManagerConfig{Defaults: EndpointConfig{Breaker: &BreakerConfig{FailureThreshold: 1_000_000}}})
	e := mustEndpointOf(t, m, "GET /x")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	until := func(fn func()) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					fn()
				}
			}
		})
	}
	header, user := func(string) string { return "on" }, func() string { return "ann" }
	for range 4 {
		until(func() { e.Inject(header, user) })
	}
	until(func() {
		m.Faults()
		e.Breaker().Snapshot()
	})
	for i := range 300 {
		f, err := m.StartFault(Fault{Endpoint: "GET /x", Percent: 50, Status: 500, Header: "X-Chaos", User: "ann", Duration: time.Duration(i%7+1) * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			m.StopFault(f.ID)
		}
		clock.Advance(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	clock.Advance(time.Second)
	if fs := m.Faults(); len(fs) != 0 {
		t.Fatalf("%d experiments outlived their time", len(fs))
	}
	s := e.Breaker().Snapshot()
	if s.InjectedFailures != s.InjectedStatus || s.FailedRequests != 0 {
		t.Fatalf("counts %+v", s)
	}
}

func TestRestoreInjectedFailures(t *testing.T) {
	b, _, _ := newTestBreaker(t, BreakerConfig{})
	err := ReplicationOf(b).Restore(Snapshot{State: events.Closed, TotalRequests: 10, FailedRequests: 2, InjectedFailures: 3})
	if err != nil {
		t.Fatal(err)
	}
	if s := b.Snapshot(); s.TotalRequests != 10 || s.FailedRequests != 2 || s.SuccessfulRequests != 8 || s.InjectedFailures != 3 {
		t.Fatalf("restored %+v", s)
	}
	if err := ReplicationOf(b).Restore(Snapshot{State: events.Closed, InjectedFailures: -1}); err == nil {
		t.Fatal("restored a negative count")
	}
}
