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

// An http.RoundTripper closes the request body, errors included: also
// when the breaker rejects the first attempt or the context is done.
func TestRoundTripClosesBodyWhenBreakerRejects(t *testing.T) {
	u := newUpstream(t)
	f := newTransport(t, core.EndpointConfig{}, TransportConfig{})
	req, _ := http.NewRequest("PUT", u.srv.URL+"/item", nil)
	body := &closeTracker{Reader: strings.NewReader("payload")}
	req.Body = body
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("payload")), nil }
	e, err := f.m.Endpoint(req.URL.Host)
	if err != nil {
		t.Fatal(err)
	}
	e.Breaker().ForceOpen("test")
	if _, err := f.tr.RoundTrip(req); err == nil {
		t.Fatal("a forced-open breaker let the request through")
	}
	if !body.closed {
		t.Fatal("RoundTrip returned an error without closing the request body")
	}
}

func TestRoundTripClosesBodyWhenContextDone(t *testing.T) {
	u := newUpstream(t)
	f := newTransport(t, core.EndpointConfig{}, TransportConfig{})
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

// An http.RoundTripper must not modify the request (beyond consuming and
// closing its body).
func TestRoundTripDoesNotModifyTheRequest(t *testing.T) {
	u := newUpstream(t)
	f := newTransport(t, core.EndpointConfig{}, TransportConfig{})
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
