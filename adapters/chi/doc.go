// Package bulwarkchi puts Bulwark's guards on a chi router. It is imported
// as github.com/bulwark-go/bulwark/adapters/chi and named bulwarkchi so that
// it does not clash with chi itself.
//
// The adapter only names the endpoint: chi's route pattern with the method
// in front, "GET /users/{id}", one endpoint for /users/1 and /users/2.
// Everything else — the per-user and endpoint bulkheads, the breaker,
// classification, the 429/503 answers with Retry-After, the SLO — is
// nethttp's Guard, so a chi service behaves exactly like a net/http one.
// Which policies an endpoint has is the Manager's configuration, by these
// endpoint keys: the policies in ManagerConfig.Defaults, or in the
// endpoint's entry of ManagerConfig.Endpoints; with ManagerConfig.PerUser,
// Config.UserKey is required.
//
//	m, err := core.NewManager(core.ManagerConfig{
//		Defaults:  core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 5}},
//		Endpoints: map[string]core.EndpointConfig{
//			"GET /users/{id}": {Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 64}},
//		},
//	})
//	if err != nil { return err }
//	mw, err := bulwarkchi.Middleware(nethttp.Config{Manager: m})
//	if err != nil { return err }
//	r := chi.NewRouter()
//	r.Use(mw) // then r.Get("/users/{id}", users) …
//
// The middleware may be mounted anywhere: r.Use on the root router or a
// sub-router, inside r.Group, or inline with r.With. chi fills in the route
// pattern as routing proceeds, so where the request has not been routed yet
// (r.Use runs before chi looks the route up) the middleware asks the root
// router which pattern the request will match; where it has (Group, With)
// it takes the pattern chi found. A request that matches no route (404,
// 405) passes through unguarded: raw paths are unbounded and must never
// become endpoint keys. Config.EndpointKey is not used.
//
// The admin handler is an http.Handler; mount it at a prefix. Under a
// root r.Use(mw) it is guarded like any route (one endpoint per method,
// "GET /admin/*"); to keep it out, guard the API in a Group instead:
//
//	h, err := admin.New(admin.Config{Manager: m, Prefix: "/admin"})
//	if err != nil { return err }
//	r.Mount("/admin", h) // chi passes the full path: Config.Prefix strips it
//	r.Group(func(r chi.Router) {
//		r.Use(mw)
//		r.Get("/users/{id}", users)
//	})
package bulwarkchi
