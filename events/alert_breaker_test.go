package events

import (
	"strings"
	"testing"
	"time"
)

func newBreakerAlerts(t *testing.T, opts ...BreakerAlertOption) (*Bus, *AlertManager, *CircuitBreakerAlertHandler) {
	t.Helper()
	bus := NewBus()
	m, err := NewAlertManager(AlertManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewCircuitBreakerAlertHandler(m, bus, opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.Start()
	t.Cleanup(h.Close)
	return bus, m, h
}

func TestNewCircuitBreakerAlertHandlerNil(t *testing.T) {
	m, _ := NewAlertManager(AlertManagerConfig{})
	if _, err := NewCircuitBreakerAlertHandler(nil, NewBus()); err == nil {
		t.Error("nil manager accepted")
	}
	if _, err := NewCircuitBreakerAlertHandler(m, nil); err == nil {
		t.Error("nil bus accepted")
	}
	h, _ := NewCircuitBreakerAlertHandler(m, NewBus())
	h.Close() // before Start: nothing to do
}

func TestBreakerAlertLifecycle(t *testing.T) {
	bus, m, h := newBreakerAlerts(t)
	got := newCollector()
	m.AddHandler(got)
	t0 := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	sc := func(from, to State, reason string, at time.Duration) StateChange {
		return StateChange{Endpoint: "api-service", OldState: from, NewState: to, Timestamp: t0.Add(at), Reason: reason}
	}

	bus.Publish(sc(Closed, Open, "Failure threshold exceeded", 0))
	fired := got.next(t)
	if fired.Severity != Critical || fired.Resolved {
		t.Fatalf("fired %+v", fired)
	}
	if want := "Circuit breaker for endpoint 'api-service' has opened: Failure threshold exceeded"; fired.Message != want {
		t.Fatalf("message %q, want %q", fired.Message, want)
	}
	md := fired.Type.Metadata
	if md["endpoint"] != "api-service" || md["reason"] != "Failure threshold exceeded" || md["timestamp"] != "2025-10-08T12:00:00Z" || md[MetaAlertName] != AlertNameBreakerOpen {
		t.Fatalf("metadata %v", md)
	}
	if !fired.Timestamp.Equal(t0) {
		t.Fatalf("timestamp %v", fired.Timestamp)
	}

	// Half-open and back to open, and a forced open on top: still one alert.
	bus.Publish(sc(Open, HalfOpen, "timeout elapsed", time.Second))
	bus.Publish(sc(HalfOpen, Open, "probe failed", 2*time.Second))
	bus.Publish(sc(Open, ForcedOpen, "forced open: by hand", 3*time.Second))
	// Another endpoint opening fires its own alert.
	bus.Publish(StateChange{Endpoint: "other", OldState: Closed, NewState: Open, Timestamp: t0, Reason: "x"})
	if other := got.next(t); other.Type.Metadata["endpoint"] != "other" {
		t.Fatalf("expected the other endpoint's alert, got %+v", other)
	}

	bus.Publish(sc(ForcedOpen, Closed, "reset", time.Minute))
	resolved := got.next(t)
	if resolved.ID != fired.ID || !resolved.Resolved || !resolved.ResolvedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("resolved %+v, want alert %s resolved at +1m", resolved, fired.ID)
	}
	// A close without an open alert does nothing; a new open is a new alert.
	bus.Publish(sc(Closed, Closed, "reset", 2*time.Minute))
	bus.Publish(sc(Closed, Open, "again", 3*time.Minute))
	again := got.next(t)
	if again.ID == fired.ID || again.Resolved {
		t.Fatalf("re-open after close: %+v", again)
	}
	h.Close()
	if n := len(got.all()); n != 4 {
		t.Fatalf("%d alerts delivered, want 4: %+v", n, got.all())
	}
	if h.Dropped() != 0 {
		t.Fatalf("dropped %d", h.Dropped())
	}
}

func TestBreakerAlertForcedOpenWording(t *testing.T) {
	bus, m, _ := newBreakerAlerts(t)
	got := newCollector()
	m.AddHandler(got)
	bus.Publish(StateChange{Endpoint: "db", OldState: Closed, NewState: ForcedOpen, Reason: "forced open: maintenance"})
	a := got.next(t)
	if want := "Circuit breaker for endpoint 'db' has been forced open: maintenance"; a.Message != want {
		t.Fatalf("message %q, want %q", a.Message, want)
	}
}

func TestBreakerAlertRemote(t *testing.T) {
	bus, m, h := newBreakerAlerts(t)
	got := newCollector()
	m.AddHandler(got)
	// Another instance decided this transition: it alerts, we don't.
	bus.Publish(StateChange{Endpoint: "a", OldState: Closed, NewState: Open, Reason: "x", Remote: true})
	bus.Publish(StateChange{Endpoint: "a", OldState: Open, NewState: Closed, Reason: "y", Remote: true})
	// We opened "b"; another instance closed it: our alert resolves.
	bus.Publish(StateChange{Endpoint: "b", OldState: Closed, NewState: Open, Reason: "x"})
	bus.Publish(StateChange{Endpoint: "b", OldState: Open, NewState: Closed, Reason: "y", Remote: true})
	h.Close()
	all := got.all()
	if len(all) != 2 || all[0].Type.Metadata["endpoint"] != "b" || !all[1].Resolved || all[1].ID != all[0].ID {
		t.Fatalf("alerts %+v", all)
	}
}

func TestBreakerAlertResolvedByHand(t *testing.T) {
	bus, m, _ := newBreakerAlerts(t)
	got := newCollector()
	m.AddHandler(got)
	bus.Publish(StateChange{Endpoint: "a", NewState: Open})
	first := got.next(t)
	m.Resolve(first.ID) // an operator acknowledged it
	got.next(t)
	// The breaker re-opens without closing first: a new alert fires.
	bus.Publish(StateChange{Endpoint: "a", OldState: HalfOpen, NewState: Open})
	if a := got.next(t); a.ID == first.ID || a.Resolved {
		t.Fatalf("got %+v", a)
	}
}

func TestSLOBurnAlert(t *testing.T) {
	bus, m, h := newBreakerAlerts(t)
	got := newCollector()
	m.AddHandler(got)
	t0 := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	burn := SLOBurn{Type: TypeSLOBurn, Endpoint: "api", Burning: true, SuccessRate: 0.95, BudgetRemaining: 0.2, LongBurnRate: 14.4, ShortBurnRate: 20, Timestamp: t0, Reason: "burn rate 14.4x over 1h"}
	bus.Publish(burn)
	bus.Publish(burn) // still burning: no second alert
	stop := burn
	stop.Burning, stop.Timestamp = false, t0.Add(time.Hour)
	bus.Publish(&stop)
	bus.Publish(stop) // already resolved: nothing
	h.Close()
	all := got.all()
	if len(all) != 2 {
		t.Fatalf("%d alerts, want 2: %+v", len(all), all)
	}
	w := all[0]
	if w.Severity != Warning || w.Type.Metadata["long_burn_rate"] != "14.4" || w.Type.Metadata[MetaAlertName] != AlertNameSLOBurn || !strings.Contains(w.Message, "'api'") {
		t.Fatalf("warning %+v", w)
	}
	if r := all[1]; r.ID != w.ID || !r.Resolved || !r.ResolvedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("resolution %+v", r)
	}
}

func TestSLOAlertsOff(t *testing.T) {
	bus, m, h := newBreakerAlerts(t, WithSLOAlerts(false), WithEventBuffer(8))
	bus.Publish(SLOBurn{Endpoint: "api", Burning: true})
	h.Close()
	if len(m.Recent()) != 0 {
		t.Fatal("SLO alert fired while turned off")
	}
}

// A handler that blocks must not block the bus: Publish never waits, and the
// loss shows up in Dropped.
func TestBreakerAlertNeverBlocksBus(t *testing.T) {
	bus, m, h := newBreakerAlerts(t, WithEventBuffer(1))
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	m.AddHandler(AlertHandlerFunc(func(Alert) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}))
	bus.Publish(StateChange{Endpoint: "a", NewState: Open})
	<-entered
	for i := range 100 {
		bus.Publish(StateChange{Endpoint: string(rune('b' + i%20)), NewState: Open})
	}
	if h.Dropped() == 0 {
		t.Fatal("no events counted as dropped")
	}
	close(release)
}

func TestBreakerAlertClusterMode(t *testing.T) {
	bus, m, h := newBreakerAlerts(t, WithClusterAlerts(true))
	got := newCollector()
	m.AddHandler(got)
	// Both instances saw this StateChange; only the winner's
	// ClusterStateChange fires.
	bus.Publish(StateChange{Endpoint: "a", OldState: Closed, NewState: Open, Reason: "x"})
	bus.Publish(ClusterStateChange{Type: TypeClusterStateChange, Endpoint: "a", OldState: Closed, NewState: Open, Reason: "x", Version: 7, Instance: "web-1"})
	fired := got.next(t)
	if md := fired.Type.Metadata; md["version"] != "7" || md["instance"] != "web-1" || md["local"] != "false" || md["endpoint"] != "a" {
		t.Fatalf("metadata %v", md)
	}
	// Another instance closed it: the Remote StateChange resolves.
	bus.Publish(StateChange{Endpoint: "a", OldState: HalfOpen, NewState: Closed, Remote: true})
	if r := got.next(t); r.ID != fired.ID || !r.Resolved {
		t.Fatalf("resolved %+v", r)
	}
	// Cut off from the store, an instance reports its own transitions.
	bus.Publish(&ClusterStateChange{Endpoint: "b", OldState: Closed, NewState: ForcedOpen, Reason: "forced open: m", Instance: "web-2", Local: true})
	local := got.next(t)
	if local.Type.Metadata["local"] != "true" || local.Message != "Circuit breaker for endpoint 'b' has been forced open: m" {
		t.Fatalf("local %+v", local)
	}
	bus.Publish(ClusterStateChange{Endpoint: "b", OldState: ForcedOpen, NewState: Closed, Version: 9})
	if r := got.next(t); r.ID != local.ID || !r.Resolved {
		t.Fatalf("resolved %+v", r)
	}
	h.Close()
	if n := len(got.all()); n != 4 {
		t.Fatalf("%d alerts", n)
	}
}

func TestBreakerAlertIgnoresClusterEventsByDefault(t *testing.T) {
	bus, m, h := newBreakerAlerts(t)
	got := newCollector()
	m.AddHandler(got)
	bus.Publish(ClusterStateChange{Endpoint: "a", OldState: Closed, NewState: Open, Version: 1})
	bus.Publish(StateChange{Endpoint: "b", OldState: Closed, NewState: Open})
	h.Close()
	if all := got.all(); len(all) != 1 || all[0].Type.Metadata["endpoint"] != "b" {
		t.Fatalf("alerts %+v", all)
	}
}

func TestBreakerAlertResolvedWhenDisabled(t *testing.T) {
	bus, m, h := newBreakerAlerts(t)
	got := newCollector()
	m.AddHandler(got)
	bus.Publish(StateChange{Endpoint: "db", OldState: Closed, NewState: Open, Reason: "down"})
	bus.Publish(StateChange{Endpoint: "db", OldState: Open, NewState: Disabled, Reason: "disabled"})
	h.Close()
	all := got.all()
	if len(all) != 2 || !all[1].Resolved || all[1].ID != all[0].ID {
		t.Fatalf("alerts %+v", all)
	}
}
