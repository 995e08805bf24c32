// Package bulwarkgin puts Bulwark's guards on a gin engine. It is imported
// as github.com/bulwark-go/bulwark/adapters/gin and named bulwarkgin so that
// it does not clash with gin itself.
//
// The adapter only names the endpoint and reads the outcome: the key is
// gin's full route path with the method in front, "GET /users/:id", one
// endpoint for /users/1 and /users/2; the status is c.Writer.Status() after
// the rest of the chain. Everything else — the per-user and endpoint
// bulkheads, the breaker, classification, the 429/503 answers with
// Retry-After, the SLO — is nethttp's Guard, so a gin service behaves
// exactly like a net/http one. Which policies an endpoint has is the
// Manager's configuration, by these endpoint keys: the policies in
// ManagerConfig.Defaults, or in the endpoint's entry of
// ManagerConfig.Endpoints; with ManagerConfig.PerUser, Config.UserKey is
// required.
//
//	m, err := core.NewManager(core.ManagerConfig{
//		Defaults:  core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 5}},
//		Endpoints: map[string]core.EndpointConfig{
//			"GET /users/:id": {Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 64}},
//		},
//	})
//	if err != nil { return err }
//	mw, err := bulwarkgin.Middleware(nethttp.Config{Manager: m})
//	if err != nil { return err }
//	g := gin.New()
//	g.Use(gin.Recovery(), mw) // then g.GET("/users/:id", users) …
//
// gin routes a request before it runs any middleware, so engine.Use,
// RouterGroup.Use and route middleware all see the route. A refused
// request is answered by the Guard's rejection writer and the chain is
// aborted. A panic further down is recorded as a failure, the permits are
// released and the panic goes on up (to gin.Recovery, mounted before this
// middleware). A request that matches no route (404, 405) passes through
// unguarded: raw paths are unbounded and must never become endpoint keys.
// Config.EndpointKey is not used.
//
// The admin handler is an http.Handler; mount it at a prefix. Under
// g.Use(mw) it is guarded like any route (one endpoint per method,
// "GET /admin/*path"); to keep it out, put the middleware on a group
// instead:
//
//	h, err := admin.New(admin.Config{Manager: m})
//	if err != nil { return err }
//	g.Any("/admin/*path", gin.WrapH(http.StripPrefix("/admin", h)))
//	api := g.Group("/api", mw)
//	api.GET("/users/:id", users)
package bulwarkgin
