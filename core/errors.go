package core

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrOpen is returned while a breaker rejects calls because it is Open or
	// ForcedOpen.
	ErrOpen = errors.New("circuit breaker is open")
	// ErrForcedOpen is returned while a breaker is held open by hand; such
	// an error also matches ErrOpen.
	ErrForcedOpen = errors.New("circuit breaker is forced open")
	// ErrTooManyProbes is returned in HalfOpen once every probe slot is taken.
	ErrTooManyProbes = errors.New("circuit breaker is half-open and all probe slots are taken")
	// ErrInvalidConfig is matched by every configuration error.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrTooManyEndpoints is returned by a Manager asked for a new endpoint
	// when it already tracks its maximum.
	ErrTooManyEndpoints = errors.New("too many endpoints")
	// ErrInvalidEndpoint is returned for an empty, oversized or non-printable
	// endpoint name.
	ErrInvalidEndpoint = errors.New("invalid endpoint name")
)

// RejectedError is the error a breaker returns when it refuses a call. It
// matches ErrOpen, ErrForcedOpen or ErrTooManyProbes with errors.Is and tells
// when to come back.
//
// A breaker makes one RejectedError per transition and hands the same value
// to every call it rejects, so rejecting allocates nothing.
type RejectedError struct {
	Endpoint string
	State    State
	// Until is when the breaker will let a probe through (zero when not known,
	// as for ForcedOpen).
	Until time.Time

	kind  error
	clock Clock
}

func (e *RejectedError) Error() string {
	if e.Endpoint == "" {
		return e.kind.Error()
	}
	return fmt.Sprintf("%s: %s", e.kind.Error(), e.Endpoint)
}

// Is matches the sentinel the rejection stands for; a forced-open rejection
// also matches ErrOpen.
func (e *RejectedError) Is(target error) bool {
	return target == e.kind || (target == ErrOpen && e.kind == ErrForcedOpen)
}

// Unwrap returns the sentinel.
func (e *RejectedError) Unwrap() error { return e.kind }

// RetryAfter returns how long until the breaker lets a probe through, or 0
// when that is not known.
func (e *RejectedError) RetryAfter() time.Duration {
	if e.Until.IsZero() || e.clock == nil {
		return 0
	}
	return max(e.Until.Sub(e.clock.Now()), 0)
}

// ConfigError names the configuration field that is wrong and what it allows.
// It matches ErrInvalidConfig.
type ConfigError struct {
	Field string // e.g. "Config.FailureThreshold"
	Value any
	Rule  string // the allowed range, in words
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("bulwark: %s = %v is invalid: %s", e.Field, e.Value, e.Rule)
}

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
