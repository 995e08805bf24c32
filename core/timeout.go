package core

import (
	"time"

	"github.com/bulwark-go/bulwark/internal/check"
)

// TimeoutConfig bounds how long an endpoint's calls may take. Deadlines
// come from the Manager's wheel (Manager.WithTimeout): they cost no
// runtime timer and one allocation a call.
type TimeoutConfig struct {
	// Request bounds a whole call: inbound, the handler's context gets
	// this deadline, and a client whose handler has not answered by then
	// gets Status; outbound, every attempt and every wait between them
	// together. Default 0: none; otherwise 1ms to 24h.
	Request time.Duration
	// Attempt bounds each outbound attempt; one that runs out is a failure
	// and is retried like a transport error, within Request. Default 0:
	// none; otherwise 1ms to 24h.
	Attempt time.Duration
	// Status is the HTTP status sent to a client whose handler did not
	// answer within Request. Default 503; 400 to 599.
	Status int
	// Disabled turns the timeouts off, for an endpoint whose Defaults give
	// them.
	Disabled bool
}

// normalize fills every zero field with its default and reports every
// field out of range into c.
func (cfg TimeoutConfig) normalize(c *check.Checker) TimeoutConfig {
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"Request", cfg.Request}, {"Attempt", cfg.Attempt}} {
		if f.v != 0 && (f.v < time.Millisecond || f.v > 24*time.Hour) {
			c.Fail(f.name, f.v, "must be between 1ms and 24h0m0s, or 0 for none")
		}
	}
	c.Int("Status", &cfg.Status, 503, 400, 599)
	return cfg
}
