package nethttp

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// bulkheadReason names an endpoint bulkhead's refusal, as the rejection
// body's "error" says.
func bulkheadReason(err error) string {
	if errors.Is(err, core.ErrBulkheadTimeout) {
		return "bulkhead_timeout"
	}
	return "bulkhead_full"
}

// Rejection describes a request refused by a policy.
type Rejection struct {
	// Reason names the refusal: "rate_limited" (the user's or the
	// endpoint's rate limit, 429, with RateLimit-Policy and RateLimit
	// headers), "user_limit" (the per-user bulkhead: the user is over their
	// limit or there is no room for another user, 429), "invalid_user" (a
	// user key too long or not UTF-8, 400), "concurrency_limit" (the
	// endpoint's adaptive limit, 503), "bulkhead_full" or
	// "bulkhead_timeout" (the endpoint's bulkhead, 503), "circuit_open"
	// (the breaker, 503), or "timeout" (the handler did not answer before
	// its deadline; the endpoint's TimeoutConfig.Status).
	Reason string
	// Endpoint is the endpoint key.
	Endpoint string
	// Status is the HTTP status to answer with: 503, 429 for a user over
	// their limit, or 400 for an unusable user key; 0 for an outbound
	// request the Transport refused.
	Status int
	// RetryAfter is when to come back; the Retry-After header carries it in
	// whole seconds, at least 1.
	RetryAfter time.Duration
	// Err is the error that refused the request: a *core.RejectedError, or
	// core.ErrTooManyUsers or core.ErrInvalidUserID.
	Err error
}

// retryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1.
func (r Rejection) retryAfterSeconds() int {
	return max(1, int((r.RetryAfter+time.Second-1)/time.Second))
}

// WriteRejection is the default rejection writer: the status, a Retry-After
// header (and for a rate limit the RateLimit header of the IETF httpapi
// draft, with RateLimit-Policy set by the middleware) and a small JSON body
// such as
//
//	{"error":"circuit_open","endpoint":"GET /users/{id}","retry_after_seconds":12}
//
// with its Content-Length, so that a client has the whole answer even
// while a timed-out handler is still running. During an outage every
// request takes this path, so it allocates nothing.
func WriteRejection(w http.ResponseWriter, _ *http.Request, rej Rejection) {
	secs := rej.retryAfterSeconds()
	h := w.Header()
	h["Retry-After"] = retryAfterValue(secs)
	h["Content-Type"] = jsonContentType
	h["Cache-Control"] = noStore
	if rej.Reason == "rate_limited" {
		if p := h["Ratelimit-Policy"]; len(p) > 0 {
			h["Ratelimit"] = rateLimitValue(p[0], secs)
		}
	}
	bp := bodyPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"error":`...)
	b = appendJSONString(b, rej.Reason)
	b = append(b, `,"endpoint":`...)
	b = appendJSONString(b, rej.Endpoint)
	b = append(b, `,"retry_after_seconds":`...)
	b = strconv.AppendInt(b, int64(secs), 10)
	b = append(b, "}\n"...)
	h["Content-Length"] = smallInt(len(b))
	w.WriteHeader(rej.Status)
	_, _ = w.Write(b)
	*bp = b
	bodyPool.Put(bp)
}

// smallInts are the header values of small numbers, made once.
var smallInts = func() (v [1024][]string) {
	for i := range v {
		v[i] = []string{strconv.Itoa(i)}
	}
	return v
}()

func smallInt(n int) []string {
	if n >= 0 && n < len(smallInts) {
		return smallInts[n]
	}
	return []string{strconv.Itoa(n)}
}

// Header values shared by every rejection; net/http only reads them.
var (
	jsonContentType = []string{"application/json"}
	noStore         = []string{"no-store"}
	bodyPool        = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}
)

func retryAfterValue(secs int) []string { return smallInt(secs) }

// appendJSONString appends s as a JSON string. Endpoint names are valid
// UTF-8 (the Manager checks them), so only quotes, backslashes and control
// characters need escaping.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
