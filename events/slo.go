package events

import "time"

// TypeSLOBurn is the EventType of an SLOBurn.
const TypeSLOBurn = "slo_burn"

// SLOBurn reports that an endpoint's error budget started burning too fast
// (Burning true) or stopped (Burning false).
type SLOBurn struct {
	Type            string    `json:"type"` // always TypeSLOBurn
	Endpoint        string    `json:"endpoint"`
	Burning         bool      `json:"burning"`
	SuccessRate     float64   `json:"success_rate"`
	BudgetRemaining float64   `json:"error_budget_remaining"`
	LongBurnRate    float64   `json:"long_burn_rate"`
	ShortBurnRate   float64   `json:"short_burn_rate"`
	Timestamp       time.Time `json:"timestamp"`
	Reason          string    `json:"reason"`
}

// EventType returns TypeSLOBurn.
func (SLOBurn) EventType() string { return TypeSLOBurn }
