package bulwarkchi

import (
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
)

// Middleware returns chi middleware that runs every routed request through
// a nethttp.Guard built from cfg, keyed by chi's route pattern. It returns
// the Guard's configuration error rather than panicking.
func Middleware(cfg nethttp.Config) (func(http.Handler) http.Handler, error) {
	g, err := nethttp.NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	return GuardMiddleware(g)
}

// GuardMiddleware returns chi middleware that runs every routed request
// through g, keyed by chi's route pattern. Share one Guard between routers
// (or with net/http middleware) to give them one behaviour.
func GuardMiddleware(g *nethttp.Guard) (func(http.Handler) http.Handler, error) {
	if g == nil {
		return nil, errors.New("bulwarkchi: nil *nethttp.Guard")
	}
	keys := new(nethttp.EndpointKeys)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.ServeHTTP(w, r, keys.Key(route(r)), next)
		})
	}, nil
}

// Endpoint returns the endpoint key of a request served by a chi router:
// the route pattern it matches, with the method in front, such as
// "GET /users/{id}". It is empty outside chi and when no route matches.
func Endpoint(r *http.Request) string { return nethttp.EndpointWithMethod(route(r)) }

// route returns the request's method and route pattern; the pattern is
// empty when no route matches.
func route(r *http.Request) (method, pattern string) {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil {
		return r.Method, ""
	}
	method = rctx.RouteMethod // set by middleware such as GetHead
	if method == "" {
		method = r.Method
	}
	if n := len(rctx.RoutePatterns); n > 0 && !strings.HasSuffix(rctx.RoutePatterns[n-1], "*") {
		// Routed to an endpoint (the middleware runs in a Group or With
		// chain): chi set r.Pattern to the full pattern before calling it.
		return method, r.Pattern
	}
	if rctx.Routes == nil {
		return method, ""
	}
	// Not routed yet (r.Use), or only as far as a sub-router's mount
	// point: ask the root router which pattern the request will match.
	path := ""
	if len(rctx.RoutePatterns) == 0 {
		path = rctx.RoutePath // a root-level rewrite, as StripSlashes does
	}
	if path == "" {
		path = r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		if path == "" {
			path = "/"
		}
	}
	tctx := findPool.Get().(*chi.Context)
	tctx.Reset()
	pattern = rctx.Routes.Find(tctx, method, path)
	findPool.Put(tctx)
	return method, tidy(pattern)
}

var findPool = sync.Pool{New: func() any { return chi.NewRouteContext() }}

// tidy trims a pattern from Find the way chi's RoutePattern trims the one
// it builds while routing, so a route has one key wherever the middleware
// is mounted.
func tidy(p string) string {
	if p == "" || p == "/" {
		return p
	}
	p = strings.TrimSuffix(p, "//")
	return strings.TrimSuffix(p, "/")
}
