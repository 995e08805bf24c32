package events

import (
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewAlertID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := NewAlertID()
		if !uuidV4.MatchString(id) {
			t.Fatalf("NewAlertID() = %q, not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("NewAlertID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestSeverityText(t *testing.T) {
	for _, s := range []Severity{Info, Warning, Critical} {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Severity
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Fatalf("round trip of %v: got %v, %v", s, back, err)
		}
	}
	if sev, err := ParseSeverity("critical"); err != nil || sev != Critical {
		t.Fatalf(`ParseSeverity("critical") = %v, %v`, sev, err)
	}
	if _, err := ParseSeverity("fatal"); err == nil {
		t.Fatal(`ParseSeverity("fatal") succeeded`)
	}
	if _, err := Severity(9).MarshalText(); err == nil {
		t.Fatal("Severity(9).MarshalText succeeded")
	}
	if got := Severity(9).String(); got != "Severity(9)" {
		t.Fatalf("Severity(9).String() = %q", got)
	}
}

func TestAlertJSON(t *testing.T) {
	ts := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	a := Alert{
		ID:        "0b0c6a8e-1d2f-4a3b-8c4d-5e6f7a8b9c0d",
		Timestamp: ts,
		Severity:  Critical,
		Type: AlertType{
			Kind:     AlertKindCustom,
			Message:  "Circuit breaker opened for api-service",
			Metadata: map[string]string{"endpoint": "api-service"},
		},
		Message: "Circuit breaker for endpoint 'api-service' has opened: Failure threshold exceeded",
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"0b0c6a8e-1d2f-4a3b-8c4d-5e6f7a8b9c0d","timestamp":"2025-10-08T12:00:00Z","severity":"Critical",` +
		`"alert_type":{"kind":"custom","message":"Circuit breaker opened for api-service","metadata":{"endpoint":"api-service"}},` +
		`"message":"Circuit breaker for endpoint 'api-service' has opened: Failure threshold exceeded","resolved":false,"resolved_at":null}`
	if string(b) != want {
		t.Fatalf("JSON:\n got %s\nwant %s", b, want)
	}

	at := ts.Add(time.Minute)
	a.Resolved, a.ResolvedAt = true, &at
	b, _ = json.Marshal(a)
	if !strings.Contains(string(b), `"resolved":true,"resolved_at":"2025-10-08T12:01:00Z"`) {
		t.Fatalf("resolved JSON: %s", b)
	}
	var back Alert
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != a.ID || back.Severity != Critical || !back.Resolved || !back.ResolvedAt.Equal(at) || back.Type.Metadata["endpoint"] != "api-service" {
		t.Fatalf("round trip: %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"severity":"Doom"}`), &back); err == nil {
		t.Fatal("unknown severity decoded")
	}
	if a.EventType() != TypeAlert {
		t.Fatalf("EventType() = %q", a.EventType())
	}
}

// collector is an AlertHandler that records what it gets.
type collector struct {
	mu  sync.Mutex
	got []Alert
	ch  chan Alert
}

func newCollector() *collector { return &collector{ch: make(chan Alert, 100)} }

func (c *collector) HandleAlert(a Alert) {
	c.mu.Lock()
	c.got = append(c.got, a)
	c.mu.Unlock()
	c.ch <- a
}

func (c *collector) all() []Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Alert(nil), c.got...)
}

func (c *collector) next(t *testing.T) Alert {
	t.Helper()
	select {
	case a := <-c.ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no alert delivered")
		return Alert{}
	}
}

func TestAlertManagerConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg   AlertManagerConfig
		field string
	}{
		{AlertManagerConfig{History: -1}, "History"},
		{AlertManagerConfig{History: MaxAlertHistory + 1}, "History"},
		{AlertManagerConfig{MaxActive: -1}, "MaxActive"},
	} {
		_, err := NewAlertManager(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), "AlertManagerConfig."+tc.field) {
			t.Errorf("NewAlertManager(%+v) = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
}

func TestAlertManagerFireResolve(t *testing.T) {
	now := time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)
	bus := NewBus()
	sub := bus.Subscribe(10)
	defer sub.Close()
	m, err := NewAlertManager(AlertManagerConfig{History: 3, Bus: bus, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	h1, h2 := newCollector(), newCollector()
	m.AddHandler(h1)
	m.AddHandler(h2) // added, not replacing h1
	m.AddHandler(nil)

	meta := map[string]string{"k": "v"}
	a := m.Fire(Alert{Severity: Warning, Message: "disk", Type: AlertType{Message: "disk", Metadata: meta}})
	meta["k"] = "changed" // the manager kept its own copy
	if !uuidV4.MatchString(a.ID) || !a.Timestamp.Equal(now) || a.Type.Kind != AlertKindCustom || a.Resolved {
		t.Fatalf("fired alert: %+v", a)
	}
	for _, h := range []*collector{h1, h2} {
		if got := h.next(t); got.ID != a.ID || got.Type.Metadata["k"] != "v" {
			t.Fatalf("handler got %+v", got)
		}
	}
	if e := <-sub.C(); e.(Alert).ID != a.ID {
		t.Fatalf("bus got %+v", e)
	}
	if act := m.Active(); len(act) != 1 || act[0].ID != a.ID {
		t.Fatalf("Active() = %+v", act)
	}
	// Firing the same ID again is idempotent.
	m.Fire(a)
	if len(h1.all()) != 1 {
		t.Fatalf("re-firing an active ID notified handlers again")
	}

	now = now.Add(time.Minute)
	r, ok := m.Resolve(a.ID)
	if !ok || r.ID != a.ID || !r.Resolved || !r.ResolvedAt.Equal(now) {
		t.Fatalf("Resolve = %+v, %v", r, ok)
	}
	if got := h1.next(t); !got.Resolved || got.ID != a.ID {
		t.Fatalf("handler got %+v", got)
	}
	if e := <-sub.C(); !e.(Alert).Resolved {
		t.Fatalf("bus got %+v", e)
	}
	if _, ok := m.Resolve(a.ID); ok {
		t.Fatal("resolving twice succeeded")
	}
	if len(m.Active()) != 0 {
		t.Fatal("resolved alert still active")
	}
	if got, ok := m.Get(a.ID); !ok || !got.Resolved {
		t.Fatalf("Get after resolve = %+v, %v", got, ok)
	}

	// Recent is a bounded ring, newest first.
	var ids []string
	for i := range 5 {
		ids = append(ids, m.Fire(Alert{Message: string(rune('a' + i))}).ID)
	}
	rec := m.Recent()
	if len(rec) != 3 || rec[0].ID != ids[4] || rec[2].ID != ids[2] {
		t.Fatalf("Recent() = %v", rec)
	}
	if _, ok := m.Get(a.ID); ok {
		t.Fatal("an alert that left the ring and is resolved is still found")
	}
}

func TestAlertManagerMaxActive(t *testing.T) {
	m, _ := NewAlertManager(AlertManagerConfig{MaxActive: 2})
	a := m.Fire(Alert{Message: "1"})
	m.Fire(Alert{Message: "2"})
	m.Fire(Alert{Message: "3"})
	if act := m.Active(); len(act) != 2 || act[0].Message != "2" {
		t.Fatalf("Active() = %+v", act)
	}
	if m.Evicted() != 1 {
		t.Fatalf("Evicted() = %d", m.Evicted())
	}
	if _, ok := m.Resolve(a.ID); ok {
		t.Fatal("resolved an evicted alert")
	}
}

func TestAlertManagerConcurrent(t *testing.T) {
	m, _ := NewAlertManager(AlertManagerConfig{History: 10})
	var mu sync.Mutex
	state := make(map[string]bool) // id -> resolved, as handlers saw it
	m.AddHandler(AlertHandlerFunc(func(a Alert) {
		mu.Lock()
		defer mu.Unlock()
		if !a.Resolved && state[a.ID] {
			t.Errorf("alert %s fired after it resolved", a.ID)
		}
		state[a.ID] = a.Resolved
	}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				a := m.Fire(Alert{Severity: Info})
				m.Recent()
				m.Active()
				if _, ok := m.Resolve(a.ID); !ok {
					t.Error("resolve failed")
				}
			}
		})
	}
	wg.Wait()
	if len(m.Active()) != 0 {
		t.Fatal("alerts left active")
	}
}
