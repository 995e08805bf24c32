package nethttp

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/bulwark-go/bulwark/core"
)

// The headers of draft-ietf-httpapi-ratelimit-headers: a refused request
// is told the policy that refused it,
//
//	RateLimit-Policy: "endpoint";q=100;w=1
//	RateLimit: "endpoint";r=0;t=3
//
// where q is the quota of the window w (seconds), r what is left of it
// and t the seconds until there is some again. The policy names are fixed
// ("endpoint" or "user"): endpoint names may hold characters a structured
// header string cannot.

// policyCache keeps the RateLimit-Policy values of each limit a Guard has
// seen, so that refusing allocates nothing once a limit has refused once.
// It is bounded: a limit is one configuration of an endpoint or the
// users'.
type policyCache struct {
	mu sync.Mutex
	m  map[policyKey][]string
}

type policyKey struct {
	name        string
	rate, burst float64
}

// set sets the RateLimit-Policy header of a limit named name with the
// given rate and burst.
func (c *policyCache) set(h http.Header, name string, s core.RateLimitStats) {
	k := policyKey{name, s.Rate, s.Burst}
	c.mu.Lock()
	v, ok := c.m[k]
	if !ok {
		if c.m == nil || len(c.m) >= 1024 {
			c.m = map[policyKey][]string{}
		}
		w := max(1, int64(math.Ceil(s.Burst/s.Rate)))
		q := max(int64(s.Burst), int64(math.Round(s.Rate*float64(w))))
		v = []string{`"` + name + `";q=` + strconv.FormatInt(q, 10) + ";w=" + strconv.FormatInt(w, 10)}
		c.m[k] = v
	}
	c.mu.Unlock()
	h["Ratelimit-Policy"] = v
}

// rateLimitValues are the RateLimit values of a refusal, by policy name
// and seconds until there is quota again.
var rateLimitValues = func() map[string]*[301][]string {
	out := map[string]*[301][]string{}
	for _, name := range []string{"endpoint", "user"} {
		var v [301][]string
		for i := range v {
			v[i] = []string{`"` + name + `";r=0;t=` + strconv.Itoa(i)}
		}
		out[name] = &v
	}
	return out
}()

// rateLimitValue is the RateLimit header of a refusal under policy (a
// RateLimit-Policy value) that lasts secs seconds.
func rateLimitValue(policy string, secs int) []string {
	name := "endpoint"
	if strings.HasPrefix(policy, `"user"`) {
		name = "user"
	}
	if secs >= 0 && secs < 301 {
		return rateLimitValues[name][secs]
	}
	return []string{`"` + name + `";r=0;t=` + strconv.Itoa(secs)}
}
