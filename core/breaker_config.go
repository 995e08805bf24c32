package core

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/check"
)

// BreakerConfig configures one circuit breaker. The zero value is the
// default breaker; every zero field takes the default written beside it.
type BreakerConfig struct {
	// Name is the endpoint the breaker guards, as events and snapshots name
	// it. A Manager sets it for the breakers it makes.
	Name string

	// Disabled makes the breaker pass every call and never trip.
	Disabled bool

	// FailureThreshold is how many consecutive failures open the breaker.
	// Default 5; 1 to 1,000,000.
	FailureThreshold int
	// SuccessThreshold is how many successful probes in HalfOpen close the
	// breaker. Default 2 (at most HalfOpenMaxRequests); 1 to
	// HalfOpenMaxRequests.
	SuccessThreshold int
	// Timeout is how long the breaker stays Open before it lets probes
	// through. Default 60s; 1ms to 24h.
	Timeout time.Duration
	// HalfOpenMaxRequests is how many probes HalfOpen admits. Default 3;
	// 1 to 10,000.
	HalfOpenMaxRequests int
	// FailureRateThreshold opens the breaker when at least this percentage
	// of the calls in the rolling window failed. Default 50; above 0 up to 100.
	FailureRateThreshold float64
	// MinRequestsForRate is how many calls the rolling window must hold
	// before the failure and slow-call rates count. Default 10; 1 to
	// 1,000,000,000.
	MinRequestsForRate int
	// RollingWindow is the span the rates are measured over. Default 10s;
	// 10ms to 24h.
	RollingWindow time.Duration
	// WindowBuckets is how many buckets the rolling window is cut into; the
	// window slides one bucket at a time. Default 10; 1 to 1,000, and each
	// bucket at least 1ms.
	WindowBuckets int

	// SlowCallDuration marks a call at least this long as slow. Zero turns
	// the slow-call rule off; otherwise 1ms to 24h.
	SlowCallDuration time.Duration
	// SlowCallRateThreshold opens the breaker when at least this percentage
	// of the calls in the window were slow. Default 100; above 0 up to 100.
	SlowCallRateThreshold float64

	// OpenBackoffMultiplier grows the open duration each time a probe fails
	// and the breaker reopens: Timeout, Timeout*m, Timeout*m², … up to
	// MaxOpenDuration. It is reset when the breaker closes. Zero or 1 keep
	// the open duration fixed; otherwise 1 to 100.
	OpenBackoffMultiplier float64
	// MaxOpenDuration caps the grown open duration. Default 10×Timeout;
	// Timeout to 7 days.
	MaxOpenDuration time.Duration

	// ProbeTimeout is how long a HalfOpen breaker waits for its probes to
	// report before it reclaims their slots, so that a lost probe cannot
	// hold the breaker half-open forever. Default Timeout; 1ms to 24h.
	ProbeTimeout time.Duration

	// Classifier maps a call's error to an Outcome for Execute and
	// Permit.Done. Nil means DefaultClassifier.
	Classifier func(error) Outcome

	// Clock tells time. Nil means SystemClock. A Manager sets its own.
	Clock Clock
	// Bus, when set, receives every transition as an events.StateChange. A
	// Manager sets its own.
	Bus *events.Bus
}

// DefaultClassifier counts nil as Success, a cancelled context as Ignored
// (the caller gave up; the dependency did not fail), a deadline as Timeout
// (a failure, counted apart) and any other error as Failure.
func DefaultClassifier(err error) Outcome {
	switch {
	case err == nil:
		return Success
	case errors.Is(err, context.Canceled):
		return Ignored
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	}
	return Failure
}

// normalize fills every zero field with its default and reports every
// field out of range into c.
func (cfg BreakerConfig) normalize(c *check.Checker) BreakerConfig {
	given := cfg
	c.Int("FailureThreshold", &cfg.FailureThreshold, 5, 1, 1_000_000)
	c.Int("HalfOpenMaxRequests", &cfg.HalfOpenMaxRequests, 3, 1, 10_000)
	c.Duration("Timeout", &cfg.Timeout, 60*time.Second, time.Millisecond, 24*time.Hour)
	c.Percent("FailureRateThreshold", &cfg.FailureRateThreshold, 50)
	c.Int("MinRequestsForRate", &cfg.MinRequestsForRate, 10, 1, 1_000_000_000)
	c.Duration("RollingWindow", &cfg.RollingWindow, 10*time.Second, 10*time.Millisecond, 24*time.Hour)
	c.Int("WindowBuckets", &cfg.WindowBuckets, 10, 1, 1000)
	if d := cfg.SlowCallDuration; d != 0 && (d < time.Millisecond || d > 24*time.Hour) {
		c.Fail("SlowCallDuration", d, "must be between 1ms and 24h0m0s, or 0 to turn the slow-call rule off")
	}
	c.Percent("SlowCallRateThreshold", &cfg.SlowCallRateThreshold, 100)
	c.Float("OpenBackoffMultiplier", &cfg.OpenBackoffMultiplier, 1, 1, 100)
	timeout := cfg.Timeout
	if given.Timeout != 0 && (timeout < time.Millisecond || timeout > 24*time.Hour) {
		timeout = 60 * time.Second // bad: judge the fields below by the default
	}
	c.Duration("ProbeTimeout", &cfg.ProbeTimeout, timeout, time.Millisecond, 24*time.Hour)

	maxProbes := cfg.HalfOpenMaxRequests
	if maxProbes < 1 || maxProbes > 10_000 {
		maxProbes = 10_000
	}
	if s := cfg.SuccessThreshold; s == 0 {
		cfg.SuccessThreshold = min(2, maxProbes)
	} else if s < 1 || s > maxProbes {
		c.Fail("SuccessThreshold", s, "must be between 1 and HalfOpenMaxRequests ("+strconv.Itoa(maxProbes)+"), or 0 for the default 2; more could never close the breaker")
	}
	if d := cfg.MaxOpenDuration; d == 0 {
		cfg.MaxOpenDuration = 10 * timeout
	} else if d < timeout || d > 7*24*time.Hour {
		c.Fail("MaxOpenDuration", d, "must be between Timeout ("+timeout.String()+") and 168h0m0s, or 0 for the default 10×Timeout")
	}
	if w, n := cfg.RollingWindow, cfg.WindowBuckets; n >= 1 && w >= 10*time.Millisecond && w/time.Duration(n) < time.Millisecond {
		c.Fail("WindowBuckets", given.WindowBuckets, "must be between 1 and "+strconv.Itoa(int(w/time.Millisecond))+": each bucket needs at least 1ms of RollingWindow ("+w.String()+")")
	}
	if cfg.Classifier == nil {
		cfg.Classifier = DefaultClassifier
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock()
	}
	return cfg
}
