// Package nethttp puts Bulwark's guards on net/http: middleware for inbound
// routes and an http.RoundTripper for outbound clients. All of Bulwark's
// HTTP logic lives here; the chi, echo and gin adapters only supply their
// router's route pattern and middleware type.
//
// Inbound:
//
//	m, _ := core.NewManager(core.ManagerConfig{})
//	mw, _ := nethttp.Middleware(nethttp.Config{Manager: m})
//	mux := http.NewServeMux()
//	mux.Handle("GET /users/{id}", mw(users)) // endpoint "GET /users/{id}"
//
// A request goes through the per-user bulkhead (429 when the user is
// over), the endpoint bulkhead (503 when full or when its queue timed out)
// and the breaker (503 while open, Retry-After = time to half-open); a
// refused request never reaches the handler. The handler's status is
// classified (5xx and panics are failures) and recorded with the duration,
// measured once, in the breaker and the SLO.
//
// Outbound:
//
//	client := &http.Client{Transport: must(nethttp.NewTransport(nethttp.TransportConfig{Manager: m}))}
//
// Each host gets a breaker; failed idempotent requests are retried with
// backoff and jitter, honouring Retry-After, until the breaker opens.
package nethttp
