package nethttp

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bulwark-go/bulwark/core"
)

type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

// Review: http.RoundTripper must close the request body, errors included.
// When the breaker rejects the first attempt (or ctx is already done),
// Transport.RoundTrip returns without ever handing the body to the base
// transport and without closing it (only the bulkhead path calls closeBody).
func TestReviewRoundTripClosesBodyWhenBreakerRejects(t *testing.T) {
	u := newUpstream(t)
	f := newTransport(t, core.Config{}, TransportConfig{})
	req, _ := http.NewRequest("PUT", u.srv.URL+"/item", nil)
	body := &closeTracker{Reader: strings.NewReader("payload")}
	req.Body = body
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("payload")), nil }
	b, err := f.m.Breaker(req.URL.Host)
	if err != nil {
		t.Fatal(err)
	}
	b.ForceOpen("test")
	if _, err := f.tr.RoundTrip(req); err == nil {
		t.Fatal("a forced-open breaker let the request through")
	}
	if !body.closed {
		t.Fatal("RoundTrip returned an error without closing the request body")
	}
}

func TestReviewRoundTripClosesBodyWhenContextDone(t *testing.T) {
	u := newUpstream(t)
	f := newTransport(t, core.Config{}, TransportConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, "PUT", u.srv.URL+"/item", nil)
	body := &closeTracker{Reader: strings.NewReader("payload")}
	req.Body = body
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("payload")), nil }
	if _, err := f.tr.RoundTrip(req); err == nil {
		t.Fatal("no error with a cancelled context")
	}
	if !body.closed {
		t.Fatal("RoundTrip returned an error without closing the request body")
	}
}

// Review: RoundTripper must not modify the request (except consuming and
// closing its body); bufferBody replaces req.Body and sets req.GetBody on
// the caller's request.
func TestReviewRoundTripDoesNotModifyTheRequest(t *testing.T) {
	u := newUpstream(t)
	f := newTransport(t, core.Config{}, TransportConfig{})
	req, _ := http.NewRequest("PUT", u.srv.URL+"/item", nil)
	orig := io.NopCloser(strings.NewReader("payload"))
	req.Body = orig
	resp, err := f.tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	discard(resp)
	if req.GetBody != nil || req.Body != orig {
		t.Fatalf("RoundTrip modified the caller's request: GetBody set %v, Body replaced %v", req.GetBody != nil, req.Body != orig)
	}
}
