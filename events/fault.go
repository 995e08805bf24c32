package events

import "time"

// The EventType values of a FaultChange.
const (
	TypeFaultStart = "fault_start"
	TypeFaultEnd   = "fault_end"
)

// FaultChange reports that a fault-injection experiment started
// (TypeFaultStart) or ended (TypeFaultEnd). Its JSON form is
//
//	{"type":"fault_start","id":"9f86d081884c7d65","endpoint":"GET /users/{id}",
//	 "percent":50,"status":500,"ends":"2025-10-08T12:10:00Z",
//	 "reason":"game day","timestamp":"2025-10-08T12:00:00Z"}
//
// The experiment's header and user filters are left out: they say which
// calls get the fault, and a user ID is not news to spread.
type FaultChange struct {
	Type         string    `json:"type"` // TypeFaultStart or TypeFaultEnd
	ID           string    `json:"id"`
	Endpoint     string    `json:"endpoint"`
	Percent      float64   `json:"percent"`
	LatencyMS    int64     `json:"latency_ms,omitempty"`
	LatencyMaxMS int64     `json:"latency_max_ms,omitempty"`
	Status       int       `json:"status,omitempty"`
	Abort        bool      `json:"abort,omitempty"`
	Ends         time.Time `json:"ends"`
	// Reason is, on a start, the operator's; on an end, "expired",
	// "stopped" or the operator's.
	Reason string `json:"reason,omitempty"`
	// Origin is the instance that started the experiment when it is shared
	// through a store; empty when it was started in this process.
	Origin string `json:"origin,omitempty"`
	// Injected is, on an end, how many calls got the fault in this
	// process.
	Injected  int64     `json:"injected,omitempty"`
	Timestamp time.Time `json:"timestamp"` // UTC
}

// EventType returns Type: TypeFaultStart or TypeFaultEnd.
func (e FaultChange) EventType() string { return e.Type }
