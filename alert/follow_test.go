package alert

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/events"
)

// following returns a Manager that follows a new bus, with a collector as
// its handler. It runs inside a synctest bubble: synctest.Wait lets the
// Manager handle everything published.
func following(t *testing.T, cfg ManagerConfig) (*events.Bus, *Manager, *collector) {
	t.Helper()
	bus := events.NewBus()
	got := &collector{}
	cfg.Bus = bus
	cfg.Handlers = append(cfg.Handlers, got)
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return bus, m, got
}

var t0 = time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)

func change(endpoint string, from, to events.State, reason string, at time.Duration) events.StateChange {
	return events.StateChange{Endpoint: endpoint, OldState: from, NewState: to, Timestamp: t0.Add(at), Reason: reason}
}

func TestBreakerAlertLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, _, got := following(t, ManagerConfig{})
		sub := bus.Subscribe(100)
		defer sub.Close()

		bus.Publish(change("api-service", events.Closed, events.Open, "Failure threshold exceeded", 0))
		synctest.Wait()
		all := got.all()
		if len(all) != 1 {
			t.Fatalf("%d alerts, want 1", len(all))
		}
		fired := all[0]
		if fired.Severity != Critical || fired.Resolved || fired.ID != breakerID("api-service", t0) {
			t.Fatalf("fired %+v", fired)
		}
		if want := "Circuit breaker for endpoint 'api-service' has opened: Failure threshold exceeded"; fired.Message != want {
			t.Fatalf("message %q, want %q", fired.Message, want)
		}
		if want := "Circuit breaker opened for api-service"; fired.Type.Message != want || fired.Type.Kind != "custom" {
			t.Fatalf("type %+v", fired.Type)
		}
		md := fired.Type.Metadata
		if md["endpoint"] != "api-service" || md["reason"] != "Failure threshold exceeded" || md["timestamp"] != "2025-10-08T12:00:00Z" ||
			md[MetaAlertName] != nameBreakerOpen || md["old_state"] != "Closed" || md["new_state"] != "Open" {
			t.Fatalf("metadata %v", md)
		}
		if !fired.Timestamp.Equal(t0) {
			t.Fatalf("timestamp %v", fired.Timestamp)
		}

		// Half-open and back to open, and a forced open on top: still one alert.
		bus.Publish(change("api-service", events.Open, events.HalfOpen, "timeout elapsed", time.Second))
		bus.Publish(change("api-service", events.HalfOpen, events.Open, "probe failed", 2*time.Second))
		bus.Publish(change("api-service", events.Open, events.ForcedOpen, "forced open: by hand", 3*time.Second))
		// Another endpoint opening fires its own alert.
		bus.Publish(change("other", events.Closed, events.Open, "x", 0))
		bus.Publish(change("api-service", events.ForcedOpen, events.Closed, "reset", time.Minute))
		// A close without an open alert does nothing; a new open is a new alert.
		bus.Publish(change("api-service", events.Closed, events.Closed, "reset", 2*time.Minute))
		bus.Publish(change("api-service", events.Closed, events.Open, "again", 3*time.Minute))
		synctest.Wait()

		all = got.all()
		if len(all) != 4 {
			t.Fatalf("%d alerts, want 4: %+v", len(all), all)
		}
		if other := all[1]; other.Type.Metadata["endpoint"] != "other" {
			t.Fatalf("expected the other endpoint's alert, got %+v", other)
		}
		if r := all[2]; r.ID != fired.ID || !r.Resolved || !r.ResolvedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("resolved %+v, want alert %s resolved at +1m", r, fired.ID)
		}
		if again := all[3]; again.ID == fired.ID || again.Resolved || again.ID != breakerID("api-service", t0.Add(3*time.Minute)) {
			t.Fatalf("re-open after close: %+v", again)
		}
		// Every alert was published on the bus too, after the events.
		var published []string
		for len(sub.C()) > 0 {
			if a, ok := (<-sub.C()).(Alert); ok {
				published = append(published, a.ID)
			}
		}
		if len(published) != 4 || published[2] != fired.ID {
			t.Fatalf("published %v", published)
		}
	})
}

func TestBreakerAlertForcedOpenWording(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, _, got := following(t, ManagerConfig{})
		bus.Publish(change("db", events.Closed, events.ForcedOpen, "forced open: maintenance", 0))
		synctest.Wait()
		if all := got.all(); len(all) != 1 || all[0].Message != "Circuit breaker for endpoint 'db' has been forced open: maintenance" {
			t.Fatalf("alerts %+v", all)
		}
	})
}

func TestBreakerAlertNoReason(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, _, got := following(t, ManagerConfig{})
		bus.Publish(events.StateChange{Endpoint: "a", NewState: events.Open}) // no reason, no time
		synctest.Wait()
		all := got.all()
		if len(all) != 1 || !strings.HasSuffix(all[0].Message, ": no reason given") || !all[0].Timestamp.Equal(time.Now()) {
			t.Fatalf("alerts %+v", all)
		}
		if all[0].ID != breakerID("a", time.Now()) {
			t.Fatal("an event without a time gets no ID from the time it was handled")
		}
	})
}

func TestBreakerAlertRemote(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, _, got := following(t, ManagerConfig{})
		// Another instance decided this transition: it alerts, we don't.
		bus.Publish(events.StateChange{Endpoint: "a", OldState: events.Closed, NewState: events.Open, Reason: "x", Remote: true})
		bus.Publish(events.StateChange{Endpoint: "a", OldState: events.Open, NewState: events.Closed, Reason: "y", Remote: true})
		// We opened "b"; another instance closed it: our alert resolves.
		bus.Publish(events.StateChange{Endpoint: "b", OldState: events.Closed, NewState: events.Open, Reason: "x"})
		bus.Publish(events.StateChange{Endpoint: "b", OldState: events.Open, NewState: events.Closed, Reason: "y", Remote: true})
		synctest.Wait()
		all := got.all()
		if len(all) != 2 || all[0].Type.Metadata["endpoint"] != "b" || !all[1].Resolved || all[1].ID != all[0].ID {
			t.Fatalf("alerts %+v", all)
		}
	})
}

func TestBreakerAlertResolvedByHand(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, m, got := following(t, ManagerConfig{})
		bus.Publish(change("a", events.Closed, events.Open, "", 0))
		synctest.Wait()
		first := got.all()[0]
		m.Resolve(first.ID) // an operator acknowledged it
		// The breaker re-opens without closing first: a new alert fires.
		bus.Publish(change("a", events.HalfOpen, events.Open, "", time.Minute))
		synctest.Wait()
		all := got.all()
		if len(all) != 3 || !all[1].Resolved || all[2].ID == first.ID || all[2].Resolved {
			t.Fatalf("alerts %+v", all)
		}
	})
}

func TestBreakerAlertResolvedWhenDisabled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, _, got := following(t, ManagerConfig{})
		bus.Publish(change("db", events.Closed, events.Open, "down", 0))
		bus.Publish(change("db", events.Open, events.Disabled, "disabled", time.Second))
		synctest.Wait()
		all := got.all()
		if len(all) != 2 || !all[1].Resolved || all[1].ID != all[0].ID {
			t.Fatalf("alerts %+v", all)
		}
	})
}

func TestSLOBurnAlert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, _, got := following(t, ManagerConfig{})
		burn := events.SLOBurn{Type: events.TypeSLOBurn, Endpoint: "api", Burning: true, SuccessRate: 0.95, BudgetRemaining: 0.2, LongBurnRate: 14.4, ShortBurnRate: 20, Timestamp: t0, Reason: "burn rate 14.4x over 1h"}
		bus.Publish(burn)
		bus.Publish(burn) // still burning: no second alert
		stop := burn
		stop.Burning, stop.Timestamp = false, t0.Add(time.Hour)
		bus.Publish(&stop)
		bus.Publish(stop) // already resolved: nothing
		synctest.Wait()
		all := got.all()
		if len(all) != 2 {
			t.Fatalf("%d alerts, want 2: %+v", len(all), all)
		}
		w := all[0]
		if w.Severity != Warning || w.Type.Metadata["long_burn_rate"] != "14.4" || w.Type.Metadata["error_budget_remaining"] != "0.2" ||
			w.Type.Metadata[MetaAlertName] != nameSLOBurn || !strings.Contains(w.Message, "'api'") || !uuidV4.MatchString(w.ID) {
			t.Fatalf("warning %+v", w)
		}
		if r := all[1]; r.ID != w.ID || !r.Resolved || !r.ResolvedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("resolution %+v", r)
		}
	})
}

func TestSLOAlertsOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, m, _ := following(t, ManagerConfig{NoSLOAlerts: true, EventBuffer: 8})
		bus.Publish(events.SLOBurn{Endpoint: "api", Burning: true})
		bus.Publish(change("a", events.Closed, events.Open, "x", 0)) // breaker alerts stay on
		synctest.Wait()
		if rec := m.Recent(); len(rec) != 1 || rec[0].Type.Metadata[MetaAlertName] != nameBreakerOpen {
			t.Fatalf("alerts %+v", rec)
		}
	})
}

// A handler that blocks must not block the bus: Publish never waits, and
// the events lost are logged.
func TestBreakerAlertNeverBlocksBus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		release := make(chan struct{})
		blocker := HandlerFunc(func(Alert) { <-release })
		bus, _, got := following(t, ManagerConfig{EventBuffer: 1, Handlers: []Handler{blocker}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		bus.Publish(change("a", events.Closed, events.Open, "x", 0))
		synctest.Wait() // the manager is stuck in the handler
		for i := range 100 {
			bus.Publish(change(string(rune('b'+i%20)), events.Closed, events.Open, "x", 0))
		}
		close(release)
		synctest.Wait()
		if n := got.len(); n != 2 { // the first, then the one event the buffer held
			t.Fatalf("%d alerts, want 2", n)
		}
		// 99 transitions lost, and the manager's own alert for "a", which it
		// publishes on the bus it follows.
		if !strings.Contains(logs.String(), "bus events lost") || !strings.Contains(logs.String(), "lost=100") {
			t.Fatalf("loss not logged: %q", logs.String())
		}
	})
}

func TestBreakerAlertClusterMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, _, got := following(t, ManagerConfig{ClusterAlerts: true})
		// Both instances saw this StateChange; only the winner's
		// ClusterStateChange fires.
		bus.Publish(change("a", events.Closed, events.Open, "x", 0))
		bus.Publish(events.ClusterStateChange{Type: events.TypeClusterStateChange, Endpoint: "a", OldState: events.Closed, NewState: events.Open, Timestamp: t0, Reason: "x", Version: 7, Instance: "web-1"})
		// Another instance closed it: the Remote StateChange resolves.
		bus.Publish(events.StateChange{Endpoint: "a", OldState: events.HalfOpen, NewState: events.Closed, Remote: true})
		// Cut off from the store, an instance reports its own transitions.
		bus.Publish(&events.ClusterStateChange{Endpoint: "b", OldState: events.Closed, NewState: events.ForcedOpen, Reason: "forced open: m", Instance: "web-2", Local: true})
		bus.Publish(events.ClusterStateChange{Endpoint: "b", OldState: events.ForcedOpen, NewState: events.Closed, Version: 9})
		synctest.Wait()
		all := got.all()
		if len(all) != 4 {
			t.Fatalf("%d alerts: %+v", len(all), all)
		}
		fired := all[0]
		if md := fired.Type.Metadata; md["version"] != "7" || md["instance"] != "web-1" || md["local"] != "false" || md["endpoint"] != "a" || fired.ID != breakerID("a", t0) {
			t.Fatalf("fired %+v", fired)
		}
		if r := all[1]; r.ID != fired.ID || !r.Resolved {
			t.Fatalf("resolved %+v", r)
		}
		local := all[2]
		if local.Type.Metadata["local"] != "true" || local.Message != "Circuit breaker for endpoint 'b' has been forced open: m" {
			t.Fatalf("local %+v", local)
		}
		if r := all[3]; r.ID != local.ID || !r.Resolved {
			t.Fatalf("resolved %+v", r)
		}
	})
}

func TestBreakerAlertIgnoresClusterEventsByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, _, got := following(t, ManagerConfig{})
		bus.Publish(events.ClusterStateChange{Endpoint: "a", OldState: events.Closed, NewState: events.Open, Version: 1})
		bus.Publish(change("b", events.Closed, events.Open, "", 0))
		synctest.Wait()
		if all := got.all(); len(all) != 1 || all[0].Type.Metadata["endpoint"] != "b" {
			t.Fatalf("alerts %+v", all)
		}
	})
}

// A restart is not news: the breaker restored Open fires nothing, and
// closing it sends the resolution of the alert fired before the restart,
// under the same ID.
func TestBreakerAlertSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rx := &collector{} // the receiver, across both lives of the process
		first, err := NewManager(ManagerConfig{Bus: events.NewBus(), Handlers: []Handler{rx}})
		if err != nil {
			t.Fatal(err)
		}
		first.bus.Publish(change("api", events.Closed, events.Open, "Failure threshold exceeded", 0))
		synctest.Wait()
		if err := first.Close(context.Background()); err != nil {
			t.Fatal(err)
		}

		time.Sleep(time.Minute) // the process restarts
		bus := events.NewBus()
		sub := bus.Subscribe(10)
		defer sub.Close()
		second, err := NewManager(ManagerConfig{Bus: bus, Handlers: []Handler{rx}})
		if err != nil {
			t.Fatal(err)
		}
		defer second.Close(context.Background())
		restored := change("api", events.Closed, events.Open, "restored: Failure threshold exceeded", 0) // when it opened
		restored.Restored = true
		bus.Publish(restored)
		synctest.Wait()
		if rx.len() != 1 || len(sub.C()) != 1 { // the bus holds the restored event alone
			t.Fatalf("a restored state notified: %+v", rx.all())
		}
		act := second.Active()
		if len(act) != 1 || act[0].ID != rx.all()[0].ID || act[0].Message != rx.all()[0].Message {
			t.Fatalf("after the restart, active %+v", act)
		}

		// The breaker probes, fails, re-opens: still the same alert.
		bus.Publish(change("api", events.Open, events.HalfOpen, "timeout elapsed", time.Minute))
		bus.Publish(change("api", events.HalfOpen, events.Open, "probe failed", time.Minute+time.Second))
		bus.Publish(change("api", events.Open, events.HalfOpen, "timeout elapsed", 2*time.Minute))
		bus.Publish(change("api", events.HalfOpen, events.Closed, "probes succeeded", 3*time.Minute))
		synctest.Wait()
		all := rx.all()
		if len(all) != 2 || all[0].Resolved || !all[1].Resolved || all[0].ID != all[1].ID || !all[1].ResolvedAt.Equal(t0.Add(3*time.Minute)) {
			t.Fatalf("receiver saw %+v, want one fired and one resolved with one ID", all)
		}
	})
}

func TestBreakerAlertRestoredStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, m, got := following(t, ManagerConfig{})
		restore := func(endpoint string, to events.State, reason string) {
			sc := change(endpoint, events.Closed, to, reason, 0)
			sc.Restored = true
			bus.Publish(sc)
		}
		restore("forced", events.ForcedOpen, "restored: forced open: maintenance")
		restore("elapsed", events.HalfOpen, "restored: open time elapsed while stopped")
		restore("closed", events.Closed, "restored")
		restore("disabled", events.Disabled, "restored")
		synctest.Wait()
		if got.len() != 0 {
			t.Fatalf("restored states notified: %+v", got.all())
		}
		act := m.Active()
		if len(act) != 2 || act[0].Message != "Circuit breaker for endpoint 'forced' has been forced open: maintenance" || act[1].Type.Metadata["endpoint"] != "elapsed" {
			t.Fatalf("active %+v", act)
		}
		// The half-open breaker fails its probe: its alert is already active.
		bus.Publish(change("elapsed", events.HalfOpen, events.Open, "probe failed", time.Second))
		bus.Publish(change("forced", events.ForcedOpen, events.Closed, "released", time.Second))
		synctest.Wait()
		all := got.all()
		if len(all) != 1 || !all[0].Resolved || all[0].ID != breakerID("forced", t0) {
			t.Fatalf("alerts %+v", all)
		}
	})
}

// In cluster mode too a restored state is recorded silently, and the
// cluster's close resolves it.
func TestBreakerAlertRestoredClusterMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, _, got := following(t, ManagerConfig{ClusterAlerts: true})
		sc := change("a", events.Closed, events.Open, "restored: x", 0)
		sc.Restored = true
		bus.Publish(sc)
		bus.Publish(events.ClusterStateChange{Endpoint: "a", OldState: events.HalfOpen, NewState: events.Closed, Timestamp: t0.Add(time.Minute), Version: 3})
		synctest.Wait()
		if all := got.all(); len(all) != 1 || !all[0].Resolved || all[0].ID != breakerID("a", t0) {
			t.Fatalf("alerts %+v", all)
		}
	})
}

// Close handles what is buffered before returning; a deadline cuts it
// short with an error wrapping the context's.
func TestManagerCloseDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus, m, got := following(t, ManagerConfig{})
		for i := range 10 {
			bus.Publish(change(string(rune('a'+i)), events.Closed, events.Open, "", 0))
		}
		if err := m.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := got.len(); n != 10 {
			t.Fatalf("%d alerts after Close, want 10", n)
		}
		bus.Publish(change("z", events.Closed, events.Open, "", 0))
		synctest.Wait()
		if n := got.len(); n != 10 {
			t.Fatal("an event after Close raised an alert")
		}
	})
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		bus, m, _ := following(t, ManagerConfig{Handlers: []Handler{HandlerFunc(func(Alert) { <-release })}})
		bus.Publish(change("a", events.Closed, events.Open, "", 0))
		bus.Publish(change("b", events.Closed, events.Open, "", 0))
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := m.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("Close = %v after %v, want the deadline after 1s", err, time.Since(start))
		}
		close(release)
		synctest.Wait()
		if n := len(m.Active()); n != 1 {
			t.Fatalf("%d alerts: the event left in the buffer was handled after Close gave up", n)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
