package core

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Config configures one circuit breaker. The zero value is the default
// breaker; every zero field takes the default written beside it.
//
// The seed's enabled flag (default true) is the negated Disabled field, so
// that the zero value stays the default.
type Config struct {
	// Disabled makes the breaker pass every call and never trip.
	Disabled bool

	// FailureThreshold is how many consecutive failures open the breaker.
	// Default 5; 1 to 1,000,000.
	FailureThreshold int
	// SuccessThreshold is how many successful probes in HalfOpen close the
	// breaker. Default 2; 1 to HalfOpenMaxRequests.
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
	// before the failure and slow-call rates count. Default 10; 1 to 1,000,000,000.
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
	// at least Timeout, at most 7 days.
	MaxOpenDuration time.Duration

	// ProbeTimeout is how long a HalfOpen breaker waits for its probes to
	// report before it reclaims their slots, so that a lost probe cannot
	// hold the breaker half-open forever. Default Timeout; 1ms to 24h.
	ProbeTimeout time.Duration

	// Classifier maps a call's error to an Outcome for Execute and
	// Permit.Done. Nil uses DefaultClassifier.
	Classifier func(error) Outcome
}

// The seed's defaults.
const (
	DefaultFailureThreshold     = 5
	DefaultSuccessThreshold     = 2
	DefaultTimeout              = 60 * time.Second
	DefaultHalfOpenMaxRequests  = 3
	DefaultFailureRateThreshold = 50.0
	DefaultMinRequestsForRate   = 10
	DefaultRollingWindow        = 10 * time.Second
	DefaultWindowBuckets        = 10
	DefaultSlowCallRate         = 100.0
)

// DefaultClassifier counts nil as Success, a cancelled context as Ignored
// (the caller gave up; the dependency did not fail) and any other error,
// including a deadline, as Failure.
func DefaultClassifier(err error) Outcome {
	switch {
	case err == nil:
		return Success
	case errors.Is(err, context.Canceled):
		return Ignored
	}
	return Failure
}

// Validate reports every field that is out of range, each as a *ConfigError
// naming the field and what it allows.
func (c Config) Validate() error {
	v := rangeCheck{prefix: "Config."}
	v.int("FailureThreshold", c.FailureThreshold, 1, 1_000_000, "5")
	v.int("HalfOpenMaxRequests", c.HalfOpenMaxRequests, 1, 10_000, "3")
	v.duration("Timeout", c.Timeout, time.Millisecond, 24*time.Hour, "60s")
	v.float("FailureRateThreshold", c.FailureRateThreshold, 1e-9, 100, "50")
	v.int("MinRequestsForRate", c.MinRequestsForRate, 1, 1_000_000_000, "10")
	v.duration("RollingWindow", c.RollingWindow, 10*time.Millisecond, 24*time.Hour, "10s")
	v.int("WindowBuckets", c.WindowBuckets, 1, 1000, "10")
	v.duration("SlowCallDuration", c.SlowCallDuration, time.Millisecond, 24*time.Hour, "off")
	v.float("SlowCallRateThreshold", c.SlowCallRateThreshold, 1e-9, 100, "100")
	v.float("OpenBackoffMultiplier", c.OpenBackoffMultiplier, 1, 100, "fixed open duration")
	v.duration("ProbeTimeout", c.ProbeTimeout, time.Millisecond, 24*time.Hour, "Timeout")
	if len(v.errs) > 0 {
		return v.err()
	}
	d := c.withDefaults()
	if c.SuccessThreshold != 0 && (c.SuccessThreshold < 1 || c.SuccessThreshold > d.HalfOpenMaxRequests) {
		v.fail("SuccessThreshold", c.SuccessThreshold, "must be between 1 and HalfOpenMaxRequests ("+strconv.Itoa(d.HalfOpenMaxRequests)+"), or 0 for the default 2; more could never close the breaker")
	}
	if c.MaxOpenDuration != 0 && (c.MaxOpenDuration < d.Timeout || c.MaxOpenDuration > 7*24*time.Hour) {
		v.fail("MaxOpenDuration", c.MaxOpenDuration, "must be between Timeout ("+d.Timeout.String()+") and 168h0m0s, or 0 for the default 10×Timeout")
	}
	if d.RollingWindow/time.Duration(d.WindowBuckets) < time.Millisecond {
		v.fail("WindowBuckets", c.WindowBuckets, "must be between 1 and "+strconv.Itoa(int(d.RollingWindow/time.Millisecond))+": each bucket needs at least 1ms of RollingWindow ("+d.RollingWindow.String()+")")
	}
	return v.err()
}

// withDefaults returns c with every zero field replaced by its default.
func (c Config) withDefaults() Config {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.FailureThreshold, DefaultFailureThreshold)
	def(&c.HalfOpenMaxRequests, DefaultHalfOpenMaxRequests)
	def(&c.MinRequestsForRate, DefaultMinRequestsForRate)
	def(&c.WindowBuckets, DefaultWindowBuckets)
	if c.SuccessThreshold == 0 {
		c.SuccessThreshold = min(DefaultSuccessThreshold, c.HalfOpenMaxRequests)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.RollingWindow == 0 {
		c.RollingWindow = DefaultRollingWindow
	}
	if c.FailureRateThreshold == 0 {
		c.FailureRateThreshold = DefaultFailureRateThreshold
	}
	if c.SlowCallRateThreshold == 0 {
		c.SlowCallRateThreshold = DefaultSlowCallRate
	}
	if c.OpenBackoffMultiplier == 0 {
		c.OpenBackoffMultiplier = 1
	}
	if c.MaxOpenDuration == 0 {
		c.MaxOpenDuration = 10 * c.Timeout
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = c.Timeout
	}
	if c.Classifier == nil {
		c.Classifier = DefaultClassifier
	}
	return c
}
