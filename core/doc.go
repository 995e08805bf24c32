// Package core holds Bulwark's resilience primitives: the circuit breaker,
// the Manager that keeps one breaker per endpoint, and the clock every
// time-based rule reads. It depends on the standard library and package
// events only; the HTTP adapters, stores, metrics and admin handler are
// built on it.
//
// The happy path:
//
//	m, err := core.NewManager(core.ManagerConfig{})      // seed defaults
//	b, err := m.Breaker("GET /users/{id}")               // one per endpoint
//	err = b.Execute(ctx, func(ctx context.Context) error {
//		return callUsers(ctx)
//	})
//	if errors.Is(err, core.ErrOpen) { /* fail fast */ }
//
// Middleware uses the permit form instead, which allocates nothing:
//
//	p, err := b.Allow()
//	if err != nil { /* reject: err is a *core.RejectedError with RetryAfter */ }
//	p.Report(core.Success, elapsed)
//
// A breaker opens on FailureThreshold consecutive failures, on a failure
// rate of at least FailureRateThreshold percent over the rolling window
// once it holds MinRequestsForRate calls, or on a slow-call rate. After
// Timeout it lets HalfOpenMaxRequests probes through; SuccessThreshold
// successes close it and a failure reopens it. ForceOpen, Release, Reset,
// Disable and Trip control it by hand. Every transition is an
// events.StateChange, published on the Manager's Bus and passed to
// OnStateChange listeners outside any lock.
//
// Tests drive time with a FakeClock instead of sleeping.
package core
