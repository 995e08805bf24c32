package events

import "time"

// Event is anything published on a Bus. EventType names the kind of event
// ("state_change", "cluster_state_change", "slo_burn", "store_status",
// "alert", ...); it is the "type" field of the admin WebSocket feed.
type Event interface {
	EventType() string
}

// StateChange reports one circuit breaker transition. Its JSON form is
//
//	{"endpoint":"api-service","old_state":"Closed","new_state":"Open",
//	 "timestamp":"2025-10-08T12:00:00Z","reason":"Failure threshold exceeded"}
type StateChange struct {
	Endpoint  string    `json:"endpoint"`
	OldState  State     `json:"old_state"`
	NewState  State     `json:"new_state"`
	Timestamp time.Time `json:"timestamp"` // UTC, RFC 3339
	Reason    string    `json:"reason"`

	// Remote is true when the transition was decided by another instance
	// and applied here (shared state). It is not part of the JSON form.
	Remote bool `json:"-"`
	// Restored is true when the transition puts back a state saved
	// earlier (Breaker.Restore, as after a restart) rather than one decided
	// now; Timestamp is then the saved time of the change it puts back,
	// also when an open time or hold ran out while stopped and the state
	// put back is the HalfOpen that follows. Alerts
	// are not raised again for a restored state. It is not part of the
	// JSON form.
	Restored bool `json:"-"`
}

// EventType returns "state_change".
func (StateChange) EventType() string { return "state_change" }
