package nethttp

import (
	"net/http"

	"github.com/bulwark-go/bulwark/internal/endpointkey"
)

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
