package nethttp

import (
	"context"
	"net/http"
	"strings"
)

// RoutePattern is the default endpoint key: the pattern net/http's ServeMux
// matched (r.Pattern), with the method in front when the pattern has none,
// e.g. "GET /users/{id}". It is empty when no pattern is known — the
// middleware then passes the request through unguarded, because keying
// breakers by raw paths would let any client create unbounded state.
//
// ServeMux sets r.Pattern only for the handler it routes to, so wrap each
// route's handler, or key the whole mux with MuxPattern.
func RoutePattern(r *http.Request) string {
	return withMethod(r.Method, r.Pattern)
}

// MuxPattern returns an endpoint key function for middleware that wraps a
// whole ServeMux: it asks mux which pattern the request would match.
func MuxPattern(mux *http.ServeMux) func(*http.Request) string {
	return func(r *http.Request) string {
		_, pattern := mux.Handler(r)
		return withMethod(r.Method, pattern)
	}
}

// withMethod puts the method in front of a pattern that has none. Router
// adapters use it with their own patterns.
func withMethod(method, pattern string) string {
	if pattern == "" {
		return ""
	}
	if i := strings.IndexByte(pattern, ' '); i > 0 && !strings.Contains(pattern[:i], "/") {
		return pattern // "GET /x" or "GET example.com/x"
	}
	return method + " " + pattern
}

// EndpointWithMethod joins a method and a router's route pattern into an
// endpoint key, "GET /users/{id}". Router adapters use it; so can custom
// key functions.
func EndpointWithMethod(method, pattern string) string { return withMethod(method, pattern) }

// UserFromHeader returns a user key function that reads the named header.
//
// A client can put anything in a header: use this only behind something
// that sets or verifies it (an authenticating proxy, say), or a client can
// pose as another user or spread its load over many made-up users. The
// per-user bulkhead's memory stays bounded either way.
func UserFromHeader(name string) func(*http.Request) string {
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request) string { return r.Header.Get(name) }
}

// UserFromContext returns a user key function that reads a string stored in
// the request's context under key, as authentication middleware leaves it.
func UserFromContext(key any) func(*http.Request) string {
	return func(r *http.Request) string { return userFromContext(r.Context(), key) }
}

func userFromContext(ctx context.Context, key any) string {
	s, _ := ctx.Value(key).(string)
	return s
}
