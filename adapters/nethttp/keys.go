package nethttp

import (
	"net/http"

	"github.com/bulwark-go/bulwark/internal/endpointkey"
)

// RoutePattern is the default endpoint key: the pattern net/http's ServeMux
// matched (r.Pattern), with the method in front when the pattern has none,
// e.g. "GET /users/{id}"; a non-standard method reads "OTHER". It is empty
// when no pattern is known — the request then passes unguarded, because
// keying endpoints by raw paths would let any client create unbounded
// state.
//
// ServeMux sets r.Pattern only for the handler it routes to, so wrap each
// route's handler, or key the whole mux with MuxPattern.
//
// The middleware's default key is this one with its results cached, so
// that keying a request allocates nothing.
func RoutePattern(r *http.Request) string { return endpointkey.WithMethod(r.Method, r.Pattern) }

// MuxPattern returns an endpoint key function for middleware that wraps a
// whole ServeMux: it asks mux which pattern the request would match.
func MuxPattern(mux *http.ServeMux) func(*http.Request) string {
	keys := endpointkey.NewCache()
	return func(r *http.Request) string {
		_, pattern := mux.Handler(r)
		return keys.Key(r.Method, pattern)
	}
}

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
	return func(r *http.Request) string {
		s, _ := r.Context().Value(key).(string)
		return s
	}
}
