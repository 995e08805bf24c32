// Package retryafter reads the Retry-After header (RFC 9110, section
// 10.2.3), the one parser that the Transport and the alert senders share.
package retryafter

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Cap bounds a delay read from a header, so that no server can ask for a
// wait that overflows or outlives any sensible retry.
const Cap = 24 * time.Hour

// Parse reads v as delay-seconds or an HTTP-date (relative to now) and
// reports whether it was either. A date in the past is a zero delay; a
// negative number is not a delay at all. Delays are capped at Cap.
func Parse(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(Cap/time.Second))) * time.Second, true
	}
	if strings.HasPrefix(v, "-") || strings.HasPrefix(v, "+") {
		return 0, false // a malformed or overflowing number is not a date
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(at.Sub(now), 0), Cap), true
}
