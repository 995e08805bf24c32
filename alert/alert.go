package alert

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"time"
)

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

// MarshalText encodes the severity by name.
func (s Severity) MarshalText() ([]byte, error) {
	if int(s) >= len(severityNames) {
		return nil, fmt.Errorf("alert: invalid severity %d", uint8(s))
	}
	return []byte(severityNames[s]), nil
}

// UnmarshalText decodes a severity name, ignoring case.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if strings.EqualFold(n, string(b)) {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("alert: unknown severity %q (want one of Info, Warning, Critical)", b)
}

// Metadata keys that handlers and the admin handler read. MetaAlertName
// names the alert: it is the webhook's "alertname" label, so set it on the
// alerts you fire to route them ("CircuitBreakerOpen" and "SLOBurnRate" for
// the Manager's own). MetaEndpoint is the endpoint the alert concerns: the
// admin handler lists an alert under it. The Manager's breaker and SLO
// alerts also set "reason" and "timestamp", and the details of the event
// that raised them.
const (
	MetaAlertName = "alertname"
	MetaEndpoint  = "endpoint"
)

// The MetaAlertName values of the alerts a Manager raises from the Bus
// (documented on Manager).
const (
	nameBreakerOpen = "CircuitBreakerOpen"
	nameSLOBurn     = "SLOBurnRate"
	nameFault       = "FaultInjection"
)

// kindCustom is the Kind of every alert Bulwark raises, and of any fired
// without one.
const kindCustom = "custom"

// Type says what kind of alert this is. Its JSON form is
//
//	{"kind":"custom","message":"Circuit breaker opened for api-service",
//	 "metadata":{"endpoint":"api-service","reason":"...","timestamp":"..."}}
type Type struct {
	// Kind is "custom" when empty at Fire.
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
// An Alert is also an events.Event, so a Manager can publish it on a Bus.
type Alert struct {
	// ID is a UUID. Fire sets a random one (version 4) when it is empty;
	// breaker alerts get one derived from the endpoint and the time the
	// breaker opened (version 8), so that the alert keeps its ID across a
	// restart, and fault alerts one derived from the experiment's ID.
	ID string `json:"id"`
	// Timestamp is when the alert fired, set by Fire when zero.
	Timestamp time.Time `json:"timestamp"`
	Severity  Severity  `json:"severity"`
	Type      Type      `json:"alert_type"`
	// Message is the full, human-readable description.
	Message    string     `json:"message"`
	Resolved   bool       `json:"resolved"`
	ResolvedAt *time.Time `json:"resolved_at"`
}

// EventType returns "alert", the alert's "type" on the admin feed.
func (Alert) EventType() string { return "alert" }

// clone returns a copy that shares nothing mutable with a.
func (a Alert) clone() Alert {
	a.Type.Metadata = maps.Clone(a.Type.Metadata)
	if a.ResolvedAt != nil {
		t := *a.ResolvedAt
		a.ResolvedAt = &t
	}
	return a
}

// newID returns a random version 4 UUID.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return formatUUID(b, 4)
}

// breakerID returns the ID of the alert for endpoint's breaker having
// opened at t: a version 8 UUID hashed from both, so that an instance
// restarted with the breaker still open resolves the alert under the ID
// its receivers saw fire.
func breakerID(endpoint string, t time.Time) string {
	h := sha256.New()
	h.Write([]byte("bulwark breaker alert\x00"))
	h.Write([]byte(endpoint))
	var ts [9]byte // a separator, then the instant: location and monotonic reading do not matter
	binary.BigEndian.PutUint64(ts[1:], uint64(t.UnixNano()))
	h.Write(ts[:])
	var b [16]byte
	copy(b[:], h.Sum(nil))
	return formatUUID(b, 8)
}

// faultID returns the ID of the alert for the fault experiment id: a
// version 8 UUID hashed from it, so that its start and end meet under one
// alert.
func faultID(id string) string {
	h := sha256.Sum256([]byte("bulwark fault alert\x00" + id))
	return formatUUID([16]byte(h[:16]), 8)
}

// formatUUID sets the version and RFC 9562 variant bits of b and returns
// its canonical text form.
func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
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
