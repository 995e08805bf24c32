package nethttp

import (
	"maps"
	"sync"
	"sync/atomic"
)

// maxCachedKeys bounds an EndpointKeys. A router has a fixed set of routes
// and methods, so the bound is only a backstop. (A variable for tests.)
var maxCachedKeys = 4096

// EndpointKeys remembers endpoint keys by method and route pattern, so that
// keying a request allocates nothing. Reads take no lock: the map is
// replaced, never changed, when a key is added. The zero value is ready;
// the router adapters keep one per middleware.
type EndpointKeys struct {
	mu   sync.Mutex // serialises adds
	keys atomic.Pointer[map[[2]string]string]
}

// Key returns EndpointWithMethod(method, pattern), from the cache when it
// can.
func (c *EndpointKeys) Key(method, pattern string) string {
	if pattern == "" {
		return ""
	}
	// Keyed by the method the key will use, so that client-chosen methods,
	// which all key as "OTHER", cannot fill the cache.
	k := [2]string{knownMethod(method), pattern}
	if m := c.keys.Load(); m != nil {
		if key, ok := (*m)[k]; ok {
			return key
		}
	}
	return c.add(k)
}

func (c *EndpointKeys) add(k [2]string) string {
	key := EndpointWithMethod(k[0], k[1])
	if p := c.keys.Load(); p != nil && len(*p) >= maxCachedKeys {
		return key // full: no lock, no copy
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[[2]string]string
	if p := c.keys.Load(); p != nil {
		old = *p
	}
	if len(old) >= maxCachedKeys {
		return key
	}
	m := make(map[[2]string]string, len(old)+1)
	maps.Copy(m, old)
	m[k] = key
	c.keys.Store(&m)
	return key
}
