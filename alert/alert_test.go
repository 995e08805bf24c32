package alert

import (
	"encoding/json"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	uuidV8 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

func TestNewID(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := newID()
		if !uuidV4.MatchString(id) {
			t.Fatalf("newID() = %q, not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("newID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestBreakerID(t *testing.T) {
	t0 := time.Date(2025, 10, 8, 12, 0, 0, 123456789, time.UTC)
	id := breakerID("api", t0)
	if !uuidV8.MatchString(id) {
		t.Fatalf("breakerID = %q, not a version 8 UUID", id)
	}
	// The same instant, however it was decoded, gives the same ID.
	var back time.Time
	b, _ := json.Marshal(t0.In(time.FixedZone("CEST", 2*3600)))
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if got := breakerID("api", back); got != id {
		t.Fatalf("same instant, other zone: %s, want %s", got, id)
	}
	for _, other := range []string{breakerID("api", t0.Add(time.Nanosecond)), breakerID("api2", t0), breakerID("ap", t0)} {
		if other == id {
			t.Fatalf("distinct breaker alerts share ID %s", id)
		}
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
	var s Severity
	if err := s.UnmarshalText([]byte("critical")); err != nil || s != Critical {
		t.Fatalf(`"critical" = %v, %v`, s, err)
	}
	if err := s.UnmarshalText([]byte("fatal")); err == nil {
		t.Fatal(`"fatal" decoded`)
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
		Type: Type{
			Kind:     "custom",
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
	if a.EventType() != "alert" {
		t.Fatalf("EventType() = %q", a.EventType())
	}
}

// FuzzAlertJSON checks that whatever decodes as an Alert encodes again and
// decodes to the same alert.
func FuzzAlertJSON(f *testing.F) {
	f.Add(`{"id":"x","timestamp":"2025-10-08T12:00:00Z","severity":"Critical","alert_type":{"kind":"custom","message":"m","metadata":{"k":"v"}},"message":"m","resolved":true,"resolved_at":"2025-10-08T12:01:00Z"}`)
	f.Add(`{"severity":"info"}`)
	f.Fuzz(func(t *testing.T, in string) {
		var a Alert
		if json.Unmarshal([]byte(in), &a) != nil {
			return
		}
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", in, err)
		}
		var back Alert
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("re-decoding %s: %v", b, err)
		}
		b2, _ := json.Marshal(back)
		if string(b) != string(b2) {
			t.Fatalf("not stable:\n%s\n%s", b, b2)
		}
	})
}

// collector is a Handler that records what it gets.
type collector struct {
	mu  sync.Mutex
	got []Alert
}

func (c *collector) HandleAlert(a Alert) {
	c.mu.Lock()
	c.got = append(c.got, a)
	c.mu.Unlock()
}

func (c *collector) all() []Alert {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Alert(nil), c.got...)
}

func (c *collector) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}
