package events

import "time"

// TypeClusterStateChange is the EventType of a ClusterStateChange.
const TypeClusterStateChange = "cluster_state_change"

// ClusterStateChange reports a breaker transition decided for the whole
// cluster by a shared-state store. It is published only on the bus of the
// instance whose proposal won the store's compare-and-set, so one cluster
// transition is one ClusterStateChange cluster-wide, however many instances
// saw the same StateChange locally at the same moment.
//
// Alerting in a cluster: when a shared-state store is attached, alerts must
// fire on ClusterStateChange events only (alert.ManagerConfig.ClusterAlerts);
// a StateChange then only resolves. Without a
// shared store they fire on StateChange events whose Remote is false. (A
// StateChange with Remote false can still lose the race in a cluster, so
// firing on it would alert once per instance that made the same
// transition.)
//
// Local is set when the store could not reach its backend and the
// transition stands for this instance alone; each instance in that
// situation reports its own, so that an outage of the store never
// silences alerts.
//
// Its JSON form is
//
//	{"type":"cluster_state_change","endpoint":"api-service","old_state":"Closed",
//	 "new_state":"Open","timestamp":"2025-10-08T12:00:00Z",
//	 "reason":"failure threshold exceeded: 5 consecutive failures",
//	 "version":7,"instance":"a1b2c3"}
type ClusterStateChange struct {
	Type      string    `json:"type"` // always TypeClusterStateChange
	Endpoint  string    `json:"endpoint"`
	OldState  State     `json:"old_state"`
	NewState  State     `json:"new_state"`
	Timestamp time.Time `json:"timestamp"` // UTC
	Reason    string    `json:"reason"`
	// Version is the shared state's version after the transition; 0 when
	// Local.
	Version uint64 `json:"version"`
	// Instance is the instance that decided the transition.
	Instance string `json:"instance"`
	// Local is true when the store was unreachable and the transition was
	// decided by this instance alone.
	Local bool `json:"local,omitempty"`
}

// EventType returns TypeClusterStateChange.
func (ClusterStateChange) EventType() string { return TypeClusterStateChange }
