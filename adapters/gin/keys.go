package bulwarkgin

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
)

// maxCachedKeys bounds a keyCache. A router has a fixed set of routes and
// methods, so the bound is only a backstop. (A variable for tests.)
var maxCachedKeys = 4096

// keyCache remembers endpoint keys by method and route pattern, so that
// keying a request allocates nothing. Reads take no lock: the map is
// replaced, never changed, when a key is added.
type keyCache struct {
	mu   sync.Mutex // serialises adds
	keys atomic.Pointer[map[[2]string]string]
}

// key returns nethttp.EndpointWithMethod(method, pattern), from the cache
// when it can.
func (c *keyCache) key(method, pattern string) string {
	if pattern == "" {
		return ""
	}
	k := [2]string{method, pattern}
	if m := c.keys.Load(); m != nil {
		if key, ok := (*m)[k]; ok {
			return key
		}
	}
	return c.add(k)
}

func (c *keyCache) add(k [2]string) string {
	key := nethttp.EndpointWithMethod(k[0], k[1])
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
