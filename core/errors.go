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
	// ErrForcedOpen is returned while a breaker is held open by hand or by a
	// component; such an error also matches ErrOpen.
	ErrForcedOpen = errors.New("circuit breaker is forced open")
	// ErrTooManyProbes is returned in HalfOpen once every probe slot is taken.
	ErrTooManyProbes = errors.New("circuit breaker is half-open and all probe slots are taken")
	// ErrBulkheadFull is returned when every slot of a bulkhead is taken and
	// its queue is full, or it has no queue.
	ErrBulkheadFull = errors.New("bulkhead is full")
	// ErrBulkheadTimeout is returned when a queued call waited QueueTimeout
	// without getting a slot.
	ErrBulkheadTimeout = errors.New("bulkhead queue timeout")
	ErrLimitExceeded   = errors.New("concurrency limit reached") // an AdaptiveLimiter shed the call: over its limit, queue full or queue timeout
	// ErrRateLimited is returned when a rate limiter has no token for a
	// call.
	ErrRateLimited = errors.New("rate limit exceeded")
	// ErrTooManyUsers is returned by a per-user bulkhead that tracks its
	// maximum of users, every one of them busy.
	ErrTooManyUsers = errors.New("too many users")
	// ErrInvalidUserID is returned for an empty, oversized or non-UTF-8 user
	// ID.
	ErrInvalidUserID = errors.New("invalid user ID")
	// ErrInvalidConfig is matched by every configuration error.
	ErrInvalidConfig = errors.New("invalid configuration")
	// ErrTooManyEndpoints is returned by a Manager asked for a new endpoint
	// when it already tracks its maximum.
	ErrTooManyEndpoints = errors.New("too many endpoints")
	// ErrInvalidEndpoint is returned for an empty, oversized or non-printable
	// endpoint name.
	ErrInvalidEndpoint = errors.New("invalid endpoint name")
)

// RejectedError is the error a policy returns when it refuses a call
// without running it: a breaker that is open (ErrOpen, ErrForcedOpen) or
// out of probe slots (ErrTooManyProbes), or a full bulkhead
// (ErrBulkheadFull, ErrBulkheadTimeout). It matches its sentinel with
// errors.Is and tells when to come back.
//
// A policy makes its RejectedError values ahead of time and hands the same
// value to every call it refuses, so refusing allocates nothing.
type RejectedError struct {
	// Endpoint is the endpoint that refused the call.
	Endpoint string
	// Until is when an Open breaker will let a probe through; zero when
	// that is not known.
	Until time.Time

	kind  error
	after time.Duration // the wait to suggest when Until is zero
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

// RetryAfter returns how long to wait before calling again: the time left
// until Until, or for a rejection without one the policy's suggestion (0
// when it has none, as for a breaker held open).
func (e *RejectedError) RetryAfter() time.Duration {
	if e.Until.IsZero() || e.clock == nil {
		return e.after
	}
	return max(e.Until.Sub(e.clock.Now()), 0)
}

// ConfigError names a configuration field that is wrong and what it allows.
// It matches ErrInvalidConfig. Constructors report every bad field, each as
// a ConfigError, joined with errors.Join.
type ConfigError struct {
	// Field is the field's full path, such as
	// "core.ManagerConfig.Endpoints[GET /users/{id}].Breaker.Timeout".
	Field string
	Value any
	// Rule is what the field allows, in words.
	Rule string
}

func (e *ConfigError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("bulwark: %s: %s", e.Field, e.Rule)
	}
	return fmt.Sprintf("bulwark: %s = %v is invalid: %s", e.Field, e.Value, e.Rule)
}

// Is matches ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
