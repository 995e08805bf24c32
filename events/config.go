package events

import "time"

// TypeConfigChange is the EventType of a ConfigChange.
const TypeConfigChange = "config_change"

// ConfigChange reports that an endpoint's settings changed while the
// service runs. Its JSON form is
//
//	{"type":"config_change","endpoint":"GET /users/{id}","source":"runtime",
//	 "version":3,"instance":"web-1","timestamp":"2025-10-08T12:00:00Z"}
type ConfigChange struct {
	Type     string `json:"type"` // always TypeConfigChange
	Endpoint string `json:"endpoint"`
	// Source says where the settings now in force come from: "runtime"
	// for a change made while running, "file" when such a change was
	// undone.
	Source string `json:"source"`
	// Version orders the changes of one endpoint across the cluster; 0
	// when they are not shared.
	Version uint64 `json:"version,omitempty"`
	// Instance is the instance that made the change, when shared.
	Instance  string    `json:"instance,omitempty"`
	Timestamp time.Time `json:"timestamp"` // UTC
}

// EventType returns TypeConfigChange.
func (ConfigChange) EventType() string { return TypeConfigChange }
