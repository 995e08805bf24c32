// Package endpointkey turns a request's method and route pattern into the
// endpoint key every Bulwark adapter uses ("GET /users/{id}"), and caches
// the keys so that keying a request allocates nothing.
package endpointkey

import (
	"net/http"
	"strings"

	"github.com/bulwark-go/bulwark/internal/cowmap"
)

// maxCached bounds a Cache. A router has a fixed set of routes and methods,
// so the bound is only a backstop.
const maxCached = 4096

// WithMethod joins a method and a route pattern into an endpoint key,
// "GET /users/{id}"; a pattern that names its method keeps it, a
// non-standard method reads "OTHER", and an empty pattern gives an empty
// key (no endpoint: the request is not guarded).
func WithMethod(method, pattern string) string {
	if pattern == "" {
		return ""
	}
	if i := strings.IndexByte(pattern, ' '); i > 0 && !strings.Contains(pattern[:i], "/") {
		return pattern // "GET /x" or "GET example.com/x"
	}
	return KnownMethod(method) + " " + pattern
}

// KnownMethod returns method if it is one of the standard ones and "OTHER"
// if not: a client may send any method, and each must not become an
// endpoint of its own.
func KnownMethod(method string) string {
	switch method {
	case "", http.MethodGet:
		return http.MethodGet
	case http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// Cache remembers endpoint keys by method and route pattern. Each
// middleware keeps one.
type Cache struct {
	keys cowmap.Map[[2]string, string]
}

// NewCache returns an empty Cache.
func NewCache() *Cache {
	c := new(Cache)
	c.keys.Max = maxCached
	return c
}

// Key returns WithMethod(method, pattern), from the cache when it can.
func (c *Cache) Key(method, pattern string) string {
	if pattern == "" {
		return ""
	}
	// Keyed by the method the key will use, so that client-chosen methods,
	// which all key as "OTHER", cannot fill the cache.
	k := [2]string{KnownMethod(method), pattern}
	if key, ok := c.keys.Load(k); ok {
		return key
	}
	key := WithMethod(k[0], k[1])
	if c.keys.Len() < maxCached { // full: no lock, no copy
		c.keys.Store(k, key)
	}
	return key
}
