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
//
// The Guard's default key function is this one with its results cached in
// an EndpointKeys, so that keying allocates nothing.
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

// withMethod puts the method in front of a pattern that has none.
func withMethod(method, pattern string) string {
	if pattern == "" {
		return ""
	}
	if i := strings.IndexByte(pattern, ' '); i > 0 && !strings.Contains(pattern[:i], "/") {
		return pattern // "GET /x" or "GET example.com/x"
	}
	return knownMethod(method) + " " + pattern
}

// knownMethod returns method if it is one of the standard ones and "OTHER"
// if not: a client may send any method, and each must not become an
// endpoint of its own.
func knownMethod(method string) string {
	switch method {
	case "", http.MethodGet:
		return http.MethodGet
	case http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// EndpointWithMethod joins a method and a router's route pattern into an
// endpoint key, "GET /users/{id}"; a pattern that names its method keeps
// it, and a non-standard method reads "OTHER". Router adapters use it (through
// EndpointKeys, which caches it); so can custom key functions.
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
