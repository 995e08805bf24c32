package events

import "time"

// TypeStoreStatus is the EventType of a StoreStatus.
const TypeStoreStatus = "store_status"

// The values of StoreStatus.Status.
const (
	// StoreDegraded: the store lost its backend (Redis unreachable, disk
	// failing). Breakers keep working on local state.
	StoreDegraded = "degraded"
	// StoreRecovered: the backend is back and the store has reconciled.
	StoreRecovered = "recovered"
	// StoreError: one payload or operation failed (a corrupt record, say)
	// without the store as a whole being degraded.
	StoreError = "error"
)

// StoreStatus reports a change in a persistence or shared-state store's
// health, or one error it handled. Its JSON form is
//
//	{"type":"store_status","store":"redis","instance":"a1b2","status":"degraded",
//	 "error":"dial tcp 127.0.0.1:6379: connection refused","timestamp":"2025-10-08T12:00:00Z"}
type StoreStatus struct {
	Type     string `json:"type"`               // always TypeStoreStatus
	Store    string `json:"store"`              // "redis", "file", ...
	Instance string `json:"instance,omitempty"` // the reporting instance, when shared
	Status   string `json:"status"`             // StoreDegraded, StoreRecovered or StoreError
	// Endpoint is the breaker the error concerns, if any.
	Endpoint  string    `json:"endpoint,omitempty"`
	Error     string    `json:"error,omitempty"`
	Timestamp time.Time `json:"timestamp"` // UTC
	// Instances lists the instances sharing the store's state, with
	// status "members"; absent otherwise.
	Instances []Instance `json:"instances,omitempty"`
}

// Instance is one instance sharing a store's state, as a StoreStatus
// lists it.
type Instance struct {
	ID       string    `json:"id"`
	LastSeen time.Time `json:"last_seen"`
	Healthy  bool      `json:"healthy"` // seen within 3 sync intervals
	Self     bool      `json:"self,omitempty"`
	// Shares maps endpoint → this instance's share (0..1) of the endpoint's
	// window requests.
	Shares map[string]float64 `json:"shares,omitempty"`
}

// EventType returns TypeStoreStatus.
func (StoreStatus) EventType() string { return TypeStoreStatus }
