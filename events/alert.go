package events

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"time"
)

// TypeAlert is the EventType of an Alert.
const TypeAlert = "alert"

// Severity ranks an alert. Its JSON form is its name: "Info", "Warning" or
// "Critical".
type Severity uint8

// The alert severities, least urgent first.
const (
	Info Severity = iota
	Warning
	Critical
)

var severityNames = [...]string{"Info", "Warning", "Critical"}

// String returns the severity's name.
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("Severity(%d)", uint8(s))
}

// Valid reports whether s is Info, Warning or Critical.
func (s Severity) Valid() bool { return int(s) < len(severityNames) }

// MarshalText encodes the severity by name.
func (s Severity) MarshalText() ([]byte, error) {
	if !s.Valid() {
		return nil, fmt.Errorf("events: invalid severity %d", uint8(s))
	}
	return []byte(severityNames[s]), nil
}

// UnmarshalText decodes a severity name, ignoring case.
func (s *Severity) UnmarshalText(b []byte) error {
	sev, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = sev
	return nil
}

// ParseSeverity returns the severity with the given name, ignoring case.
func ParseSeverity(name string) (Severity, error) {
	for i, n := range severityNames {
		if strings.EqualFold(n, name) {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("events: unknown severity %q (want one of Info, Warning, Critical)", name)
}

// AlertKindCustom is the Kind of an AlertType that carries a free message and
// metadata, the only kind Bulwark raises.
const AlertKindCustom = "custom"

// Metadata keys that Bulwark's own alerts set. MetaAlertName, when present,
// names the alert in webhook labels.
const (
	MetaAlertName = "alertname"
	MetaEndpoint  = "endpoint"
	MetaReason    = "reason"
	MetaTimestamp = "timestamp"
)

// AlertType says what kind of alert this is. Its JSON form is
//
//	{"kind":"custom","message":"Circuit breaker opened for api-service",
//	 "metadata":{"endpoint":"api-service","reason":"...","timestamp":"..."}}
type AlertType struct {
	// Kind is AlertKindCustom when empty at Fire.
	Kind string `json:"kind"`
	// Message is a short summary, suitable for a title.
	Message string `json:"message"`
	// Metadata holds the alert's details. Treat it as read-only once the
	// alert is fired: handlers read it from other goroutines.
	Metadata map[string]string `json:"metadata"`
}

// Alert is one alert, fired and later perhaps resolved. Its JSON form is
//
//	{"id":"0b0c6a8e-...","timestamp":"2025-10-08T12:00:00Z","severity":"Critical",
//	 "alert_type":{"kind":"custom","message":"...","metadata":{...}},
//	 "message":"Circuit breaker for endpoint 'api-service' has opened: ...",
//	 "resolved":false,"resolved_at":null}
//
// An Alert is also an Event, so an AlertManager can publish it on a Bus.
type Alert struct {
	// ID is a random UUID (version 4), set by Fire when empty.
	ID string `json:"id"`
	// Timestamp is when the alert fired, set by Fire when zero.
	Timestamp time.Time `json:"timestamp"`
	Severity  Severity  `json:"severity"`
	Type      AlertType `json:"alert_type"`
	// Message is the full, human-readable description.
	Message    string     `json:"message"`
	Resolved   bool       `json:"resolved"`
	ResolvedAt *time.Time `json:"resolved_at"`
}

// EventType returns TypeAlert.
func (Alert) EventType() string { return TypeAlert }

// clone returns a copy that shares nothing mutable with a.
func (a Alert) clone() Alert {
	a.Type.Metadata = maps.Clone(a.Type.Metadata)
	if a.ResolvedAt != nil {
		t := *a.ResolvedAt
		a.ResolvedAt = &t
	}
	return a
}

// NewAlertID returns a random version 4 UUID in its canonical text form.
func NewAlertID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])  // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}
