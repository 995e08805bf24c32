// Package bulwarkecho puts Bulwark's guards on an echo (v4) server. It is
// imported as github.com/bulwark-go/bulwark/adapters/echo and named
// bulwarkecho so that it does not clash with echo itself.
//
// The adapter only names the endpoint and reads the outcome: the key is
// echo's route path with the method in front, "GET /users/:id", one endpoint
// for /users/1 and /users/2; the status is the one echo will send.
// Everything else — the per-user and endpoint bulkheads, the breaker,
// classification, the 429/503 answers with Retry-After, the SLO — is
// nethttp's Guard, so an echo service behaves exactly like a net/http one.
// Which policies an endpoint has is the Manager's configuration, by these
// endpoint keys: the policies in ManagerConfig.Defaults, or in the
// endpoint's entry of ManagerConfig.Endpoints; with ManagerConfig.PerUser,
// Config.UserKey is required.
//
//	m, err := core.NewManager(core.ManagerConfig{
//		Defaults:  core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 5}},
//		Endpoints: map[string]core.EndpointConfig{
//			"GET /users/:id": {Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 64}},
//		},
//	})
//	if err != nil { return err }
//	mw, err := bulwarkecho.Middleware(nethttp.Config{Manager: m})
//	if err != nil { return err }
//	e := echo.New()
//	e.Use(mw) // then e.GET("/users/:id", users) …
//
// Mount it with e.Use, Group.Use or as route middleware, where echo has
// already routed the request; not with e.Pre, which runs before routing
// and so sees no route path (those requests pass through unguarded).
//
// A refused request is answered by the Guard's rejection writer and never
// reaches the handler. Otherwise the status recorded is the one the client
// gets: the response's status when the handler wrote one, else, when it
// returned an error, what echo's default error handler will answer: the
// code of an *echo.HTTPError (or of the one in its Internal field) and 500
// for any other error, wrapped *echo.HTTPErrors included. A custom
// HTTPErrorHandler that answers differently is not seen. A panic is recorded
// as a failure, the permits are released and the panic goes on up (to
// echo's Recover middleware, say).
//
// A request that matches no route passes through unguarded, and so do
// requests echo answers 405 and methods outside echo's standard set (which
// could otherwise reach a not-found route under any made-up method): raw
// paths and made-up methods are unbounded and must never become endpoint
// keys. Config.EndpointKey is not used.
//
// The admin handler is an http.Handler; mount it at a prefix. Under
// e.Use(mw) it is guarded like any route (one endpoint per method,
// "GET /admin/*"); to keep it out, put the middleware on a Group instead:
//
//	h, err := admin.New(admin.Config{Manager: m})
//	if err != nil { return err }
//	e.Any("/admin/*", echo.WrapHandler(http.StripPrefix("/admin", h)))
//	api := e.Group("/api", mw)
//	api.GET("/users/:id", users)
package bulwarkecho
