// Package core holds Bulwark's resilience primitives: circuit breakers,
// bulkheads (per endpoint and per user), retry with a retry budget, SLO
// tracking, fault injection, and the Manager that gives every endpoint its
// set of them. The package makes decisions only (no I/O, and no goroutine
// of its own beyond the coarse clock's, the deadline wheel's and, while a
// fault experiment runs, the one that ends it on time), depends on the
// standard library and package events, and is what the HTTP adapters,
// stores, metrics and admin handler build on.
//
// # The Manager and its endpoints
//
// A Manager keeps one Endpoint per name (a route pattern such as
// "GET /users/{id}", or an outbound dependency's name), created on first
// use from ManagerConfig.Defaults or the endpoint's own entry:
//
//	m, err := core.NewManager(core.ManagerConfig{
//		Defaults: core.EndpointConfig{
//			Breaker:  &core.BreakerConfig{FailureThreshold: 5, Timeout: 30 * time.Second},
//			Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 64},
//			SLO:      &core.SLOConfig{TargetSuccessRate: 0.99, Window: 5 * time.Minute},
//		},
//		PerUser: &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 4}},
//	})
//	e, err := m.Endpoint("GET /users/{id}")
//
// # Circuit breaker
//
// Every endpoint has a Breaker; NewBreaker makes one on its own. Execute
// runs a call through it:
//
//	err = e.Breaker().Execute(ctx, func(ctx context.Context) error {
//		return callUsers(ctx)
//	})
//	if errors.Is(err, core.ErrOpen) { /* fail fast: err is a *core.RejectedError */ }
//
// Hot paths use the permit form, which allocates nothing:
//
//	p, err := b.Allow()
//	if err != nil { /* refused: err.(*core.RejectedError).RetryAfter() */ }
//	p.Report(core.Success, elapsed) // or p.Done(err)
//
// A breaker opens on FailureThreshold consecutive failures, on a failure
// rate of at least FailureRateThreshold percent over the rolling window
// once it holds MinRequestsForRate calls, or on a slow-call rate. After
// Timeout it lets HalfOpenMaxRequests probes through; SuccessThreshold
// successes close it and a failure reopens it. Trip, ForceOpen, Release,
// Reset and Disable control it by hand; Hold and Unhold let a component
// (a health check, say) hold it open on a lease that lapses by itself if
// the component stops renewing it. Every transition is an
// events.StateChange, published on the bus and passed to OnStateChange
// listeners outside any lock; repeating a transition into the state the
// breaker is in publishes nothing.
//
// # Bulkheads
//
// A Bulkhead bounds concurrent calls, with a bounded first-come queue:
//
//	g, err := e.Bulkhead().Acquire(ctx) // *RejectedError: ErrBulkheadFull, ErrBulkheadTimeout
//	if err != nil { return err }
//	defer g.Release()
//
// A PerUserBulkhead gives each user a bulkhead of their own, in a table
// bounded by MaxUsers whatever the traffic (m.PerUser(), or
// NewPerUserBulkhead on its own):
//
//	g, err := m.PerUser().Acquire(ctx, userID) // also ErrTooManyUsers, ErrInvalidUserID
//
// # Retry
//
// A Retry runs a call again with exponential backoff and jitter; with a
// breaker it asks the breaker before every attempt and stops when it
// rejects, and a RetryBudget caps retries to a share of first attempts:
//
//	r, err := core.NewRetry(core.RetryConfig{MaxAttempts: 3, Breaker: e.Breaker()})
//	err = r.Do(ctx, callPayments)
//
// # SLOs
//
// An SLOTracker measures a success-rate objective over a rolling window:
// success rate, error budget left, burn rates. An endpoint's tracker also
// trips the endpoint's breaker when both the long and the short window
// burn the budget faster than BurnRateThreshold:
//
//	e.SLO().Record(err == nil)
//	s := e.SLO().Status() // SuccessRate, ErrorBudgetRemaining, Violated, burn rates
//
// # Fault injection
//
// With ManagerConfig.Faults set, StartFault runs an experiment on an
// endpoint for a while: a share of its calls (those matching a header or a
// user, if it says so) get a delay, a status in place of the real answer,
// or an aborted connection, from the HTTP middleware and Transport. The
// breaker counts the failures it makes as it counts real ones, apart in
// Snapshot.InjectedFailures, so that a game day shows what the breaker,
// the alerts and the callers do:
//
//	f, err := m.StartFault(core.Fault{Endpoint: "GET /users/{id}", Percent: 20, Status: 503, Duration: 10 * time.Minute})
//	defer m.StopFault(f.ID)
//
// Each start and end is an events.FaultChange; an experiment ends by
// itself at its Ends, and an endpoint without one pays one atomic load per
// call.
//
// # Time
//
// Everything time-based takes a Clock. SystemClock's Nanotime is a coarse
// reading refreshed every millisecond, about a nanosecond to read; tests
// drive a FakeClock instead of sleeping.
package core
