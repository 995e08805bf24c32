// Package nethttp puts Bulwark's guards on net/http: middleware for inbound
// routes and an http.RoundTripper for outbound clients. All of Bulwark's
// HTTP logic lives here; the chi, echo and gin adapters only supply their
// router's route pattern and middleware type.
//
// The policies come from the core.Manager's configuration: every endpoint
// has a breaker; it has a bulkhead, an SLO or a retry policy of its own
// when ManagerConfig.Defaults or its entry in ManagerConfig.Endpoints gives
// one; ManagerConfig.PerUser gives every user a bulkhead of their own.
// Config only says how requests are keyed, classified and refused.
//
// Inbound:
//
//	m, err := core.NewManager(core.ManagerConfig{
//		Defaults: core.EndpointConfig{
//			Breaker: &core.BreakerConfig{FailureThreshold: 5, Timeout: 30 * time.Second},
//			SLO:     &core.SLOConfig{TargetSuccessRate: 0.999},
//		},
//		Endpoints: map[string]core.EndpointConfig{
//			"POST /orders": {Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 64}},
//		},
//		PerUser: &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 4}},
//	})
//	if err != nil { return err }
//	mw, err := nethttp.Middleware(nethttp.Config{
//		Manager: m,
//		UserKey: nethttp.UserFromContext(userKey), // required with PerUser
//	})
//	if err != nil { return err }
//	mux := http.NewServeMux()
//	mux.Handle("GET /users/{id}", mw(users))   // endpoint "GET /users/{id}"
//	mux.Handle("POST /orders", mw(placeOrder)) // this one has a bulkhead too
//
// A request goes through the per-user bulkhead (429 "user_limit" when the
// user is over their limit, 400 "invalid_user" for an unusable user key),
// the endpoint's bulkhead if it has one (503 "bulkhead_full" or
// "bulkhead_timeout", Retry-After = BulkheadConfig.RetryAfter) and the
// breaker (503 "circuit_open" while open, Retry-After = time to half-open);
// a refused request never reaches the handler and is answered with a small
// JSON body (see WriteRejection). The handler's status is classified (5xx
// and panics are failures) and recorded with the duration, measured once,
// in the breaker, the endpoint's latency histogram and its SLO; requests
// that were refused are not recorded in the SLO.
//
// With fault injection on (core.ManagerConfig.Faults), an experiment
// running on the endpoint comes before every policy: the requests it
// chooses are delayed, answered with its status (header X-Bulwark-Fault
// names it) or aborted, inbound in place of the handler and outbound in
// place of the upstream (see Guard.Enter and Transport). With none running
// it costs one atomic load.
//
// Routers whose handlers are not http.Handlers use a Guard: NewGuard, then
// Enter before the handler and Ticket.Finish after it (see Guard.Enter).
//
// Outbound:
//
//	tr, err := nethttp.NewTransport(nethttp.TransportConfig{
//		Manager:     m,
//		EndpointKey: func(*http.Request) string { return "payments" },
//	})
//	if err != nil { return err }
//	client := &http.Client{Transport: tr}
//
// Each endpoint (by default the request's host) gets its breaker and its
// retry policy (EndpointConfig.Retry, by default 3 attempts; MaxAttempts 1
// turns retrying off): failed idempotent requests are retried with backoff
// and jitter, honouring Retry-After, until the breaker opens, and every
// discarded response body is drained and closed. An endpoint with a
// bulkhead bounds the calls in flight.
package nethttp
