package nethttp

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Reasons a request is rejected before it reaches the handler.
const (
	ReasonCircuitOpen     = "circuit_open"
	ReasonBulkheadFull    = "bulkhead_full"
	ReasonBulkheadTimeout = "bulkhead_timeout"
	ReasonUserLimit       = "user_limit"
	ReasonInvalidUser     = "invalid_user" // a user key too long or not UTF-8: 400
)

// Rejection describes a request refused by a guard.
type Rejection struct {
	// Reason is one of the Reason constants.
	Reason string
	// Endpoint is the endpoint key.
	Endpoint string
	// Status is the HTTP status to answer with: 503, 429 for a user over
	// their limit, or 400 for an unusable user key.
	Status int
	// RetryAfter is when to come back; the Retry-After header carries it in
	// whole seconds, at least 1.
	RetryAfter time.Duration
	// Err is the error that refused the request (a *core.RejectedError,
	// core.ErrBulkheadFull, …).
	Err error
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1.
func (r Rejection) RetryAfterSeconds() int {
	return max(1, int((r.RetryAfter+time.Second-1)/time.Second))
}

// WriteRejection is the default rejection writer: the status, a Retry-After
// header and a small JSON body such as
//
//	{"error":"circuit_open","endpoint":"GET /users/{id}","retry_after_seconds":12}
func WriteRejection(w http.ResponseWriter, _ *http.Request, rej Rejection) {
	h := w.Header()
	h.Set("Retry-After", strconv.Itoa(rej.RetryAfterSeconds()))
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(rej.Status)
	_ = json.NewEncoder(w).Encode(rejectionBody{rej.Reason, rej.Endpoint, rej.RetryAfterSeconds()})
}

type rejectionBody struct {
	Error             string `json:"error"`
	Endpoint          string `json:"endpoint"`
	RetryAfterSeconds int    `json:"retry_after_seconds"`
}
