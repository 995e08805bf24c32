package nethttp

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// faultHeader names, on an answer a fault experiment gave, the experiment.
const faultHeader = "X-Bulwark-Fault"

// The steps of a request that a fault experiment chose, before the
// policies (see core.Endpoint.Inject, which has counted it and recorded
// its outcome in the breaker already): its delay on the clock, then its
// answer. Nothing here runs unless an experiment runs on the endpoint.

// sleep waits d on clock, or until ctx ends, and reports whether d passed.
// A timer lives only while an experiment delays a call.
func sleep(ctx context.Context, clock core.Clock, d time.Duration) bool {
	t := clock.NewTimer(d)
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		t.Stop()
		return false
	}
}

// faultBody is the body of an answer a fault experiment gave.
func faultBody(id string) []byte {
	b := append(make([]byte, 0, 48+len(id)), `{"error":"injected fault","fault":`...)
	b = appendJSONString(b, id)
	return append(b, "}\n"...)
}

// injectFault delays an inbound request as f says and answers it with f's
// status, or aborts it, in place of the handler. It reports whether the
// request goes on to the policies: false when it was answered or ended
// while delayed (no one is left to answer then); t is recycled.
func (t *Ticket) injectFault(w http.ResponseWriter, f *core.Fault, delay time.Duration) bool {
	g, r := t.g, t.req
	if delay > 0 && !sleep(r.Context(), g.clock, delay) {
		t.recycle()
		return false
	}
	switch {
	case f.Abort:
		t.recycle()
		// net/http closes the connection without an answer, and logs
		// nothing, for this value.
		panic(http.ErrAbortHandler)
	case f.Status != 0:
		t.recycle()
		body := faultBody(f.ID)
		h := w.Header()
		h.Set(faultHeader, f.ID)
		h["Content-Type"] = jsonContentType
		h["Cache-Control"] = noStore
		h["Content-Length"] = smallInt(len(body))
		w.WriteHeader(f.Status)
		_, _ = w.Write(body)
		return false
	}
	return true
}

// faultAbort is the error of an outbound request a fault experiment
// aborted. It matches http.ErrAbortHandler, the value an aborted inbound
// request panics with, which no transport error matches.
type faultAbort struct{ id string }

func (e *faultAbort) Error() string {
	return "nethttp: request aborted by fault experiment " + e.id
}

func (e *faultAbort) Unwrap() error { return http.ErrAbortHandler }

// injected answers an outbound request as f says, in place of the
// upstream: with an error for an abort, else with a response of f's
// status. Either goes to the Fallback as a failure of the upstream would.
func (t *Transport) injected(req *http.Request, f *core.Fault) (*http.Response, error) {
	closeBody(req) // nothing will send it
	if f.Abort {
		return t.fallback(req, nil, &faultAbort{id: f.ID})
	}
	body := faultBody(f.ID)
	resp := &http.Response{
		Status:     strconv.Itoa(f.Status) + " " + http.StatusText(f.Status),
		StatusCode: f.Status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": jsonContentType, faultHeader: {f.ID}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}
	if f.Status >= 500 || f.Status == http.StatusTooManyRequests {
		return t.fallback(req, resp, &statusError{code: f.Status})
	}
	return resp, nil
}
