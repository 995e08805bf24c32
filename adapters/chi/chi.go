package bulwarkchi

import (
	"net/http"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/internal/endpointkey"
)

// Middleware returns chi middleware that runs every routed request through
// its endpoint's policies, keyed by chi's route pattern (cfg.EndpointKey is
// not used). It returns the configuration error rather than panicking.
func Middleware(cfg nethttp.Config) (func(http.Handler) http.Handler, error) {
	keys := endpointkey.NewCache()
	cfg.EndpointKey = func(r *http.Request) string { return keys.Key(route(r)) }
	return nethttp.Middleware(cfg)
}

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
