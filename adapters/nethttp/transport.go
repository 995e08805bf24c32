package nethttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/retryafter"
)

// DefaultMaxReplayBody is how much of a request body without GetBody the
// Transport buffers so that it can send it again on a retry.
const DefaultMaxReplayBody = 1 << 20

// drainLimit bounds how much of a discarded response body is read so that
// its connection can be reused.
const drainLimit = 64 << 10

// TransportConfig configures a Transport. Only Manager is required.
type TransportConfig struct {
	// Base sends the requests. Nil means http.DefaultTransport.
	Base http.RoundTripper
	// Manager supplies one breaker per endpoint (and one bulkhead per
	// endpoint when Bulkheads is set). Endpoints count against its
	// MaxEndpoints: give outbound calls a Manager of their own when they
	// reach many hosts, so they cannot use up the inbound routes' share.
	// Past the bound, requests are sent unguarded.
	Manager *core.Manager
	// EndpointKey names a request's endpoint. Nil means the request's host
	// (with its port, if any).
	EndpointKey func(*http.Request) string
	// Retry is the retry policy. Its Retryable and Delay fields are the
	// Transport's own (transport errors, 5xx and 429 are retried, except
	// 501; Retry-After is honoured); its other fields apply.
	Retry core.RetryConfig
	// NoRetry sends every request once.
	NoRetry bool
	// RetryAllMethods retries requests of any method. By default only
	// idempotent ones are: GET, HEAD, OPTIONS, TRACE, PUT, DELETE and those
	// with an Idempotency-Key header.
	RetryAllMethods bool
	// MaxReplayBody is how much of a body without GetBody is buffered for
	// retries; a longer body is sent once, not retried. Default 1 MiB;
	// -1 never buffers.
	MaxReplayBody int64
	// Bulkheads limits concurrent requests per endpoint with the Manager's
	// bulkheads.
	Bulkheads bool
}

// Transport is an http.RoundTripper that sends each request through its
// endpoint's circuit breaker with breaker-aware retry. An open breaker fails
// the request at once with its *core.RejectedError, without touching the
// network.
type Transport struct {
	cfg   TransportConfig
	base  http.RoundTripper
	retry *core.Retry
	once  *core.Retry // single attempt, for requests that must not be retried
}

// NewTransport returns a Transport, or an error naming what is wrong in cfg.
func NewTransport(cfg TransportConfig) (*Transport, error) {
	if cfg.Manager == nil {
		return nil, errors.New("nethttp: TransportConfig.Manager is required")
	}
	if cfg.MaxReplayBody < -1 {
		return nil, fmt.Errorf("nethttp: TransportConfig.MaxReplayBody = %d: must be -1 (never buffer), 0 (default 1 MiB) or positive", cfg.MaxReplayBody)
	}
	if cfg.MaxReplayBody == 0 {
		cfg.MaxReplayBody = DefaultMaxReplayBody
	}
	t := &Transport{cfg: cfg, base: cfg.Base}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	rc := cfg.Retry
	rc.Retryable = retryable
	rc.Delay = retryAfterDelay
	if cfg.NoRetry {
		rc.MaxAttempts = 1
	}
	opt := core.WithClock(cfg.Manager.Clock())
	var err error
	if t.retry, err = core.NewRetry(rc, opt); err != nil {
		return nil, fmt.Errorf("nethttp: TransportConfig.Retry: %w", err)
	}
	rc.MaxAttempts = 1
	if t.once, err = core.NewRetry(rc, opt); err != nil {
		return nil, err
	}
	return t, nil
}

// RetryStats returns the retry policy's counters.
func (t *Transport) RetryStats() core.RetryStats { return t.retry.Stats() }

// statusError is an HTTP response counted as a failure: 5xx or 429.
type statusError struct {
	code       int
	retryAfter time.Duration
	hasAfter   bool
}

func (e *statusError) Error() string {
	return "upstream answered " + strconv.Itoa(e.code) + " " + http.StatusText(e.code)
}

func retryable(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.code != http.StatusNotImplemented
	}
	return core.DefaultRetryable(err)
}

func retryAfterDelay(_ int, err error) (time.Duration, bool) {
	var se *statusError
	if errors.As(err, &se) && se.hasAfter {
		return se.retryAfter, true
	}
	return 0, false
}

func (t *Transport) endpoint(r *http.Request) string {
	if t.cfg.EndpointKey != nil {
		return t.cfg.EndpointKey(r)
	}
	return r.URL.Host
}

func (t *Transport) mayRetry(r *http.Request) bool {
	if t.cfg.RetryAllMethods || r.Header.Get("Idempotency-Key") != "" {
		return true
	}
	switch r.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// RoundTrip sends req through its endpoint's breaker, retrying when that is
// safe. The response of the last attempt is returned as is, 5xx included;
// every discarded response body is drained and closed.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ep := t.endpoint(req)
	b, err := t.cfg.Manager.Breaker(ep)
	if err != nil {
		// Past the endpoint bound or an unusable name: send it unguarded
		// rather than fail traffic because of bookkeeping.
		return t.base.RoundTrip(req)
	}
	if t.cfg.Bulkheads {
		bh, err := t.cfg.Manager.Bulkhead(ep)
		if err == nil {
			g, err := bh.Acquire(req.Context())
			if err != nil {
				closeBody(req)
				return nil, err
			}
			defer g.Release()
		}
	}
	policy := t.retry
	if !t.mayRetry(req) {
		policy = t.once
	}
	if policy == t.retry && req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// Buffer into a copy: a RoundTripper must not modify the request.
		r2 := *req
		req = &r2
		if !t.bufferBody(req) {
			policy = t.once
		}
	}
	a := attempt{t: t, req: req, b: b}
	err = policy.DoWithBreaker(req.Context(), b, a.run)
	if a.n == 0 {
		closeBody(req) // no attempt took the body: closing it is ours to do
	}
	if a.last != nil {
		// Attempts ran out on a failing status: that response is the answer.
		// When the breaker opened or the context ended, the error says so.
		var se *statusError
		if err == nil || errors.As(err, &se) && !rejected(err) && req.Context().Err() == nil {
			return a.last, nil
		}
		discard(a.last)
	}
	if err == nil {
		err = errors.New("nethttp: no response") // unreachable: run sets last on success
	}
	return nil, err
}

// attempt is one request's state across its attempts.
type attempt struct {
	t    *Transport
	req  *http.Request
	b    *core.Breaker
	n    int
	last *http.Response
}

func (a *attempt) run(ctx context.Context) error {
	if a.last != nil {
		discard(a.last)
		a.last = nil
	}
	req := a.req
	if a.n > 0 {
		req = a.req.Clone(ctx)
		if a.req.GetBody != nil {
			body, err := a.req.GetBody()
			if err != nil {
				return err
			}
			req.Body = body
		}
	}
	a.n++
	clock := a.t.cfg.Manager.Clock()
	start := clock.Nanotime()
	resp, err := a.t.base.RoundTrip(req)
	a.b.ObserveDuration(time.Duration(clock.Nanotime() - start))
	if err != nil {
		return err
	}
	a.last = resp
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
		d, ok := retryafter.Parse(resp.Header.Get("Retry-After"), a.t.cfg.Manager.Clock().Now())
		return &statusError{code: resp.StatusCode, retryAfter: d, hasAfter: ok}
	}
	return nil
}

// bufferBody reads up to MaxReplayBody of a body without GetBody so that it
// can be replayed. It reports false when the body is longer (it is then sent
// once, unbuffered beyond what was read) or could not be read.
func (t *Transport) bufferBody(req *http.Request) bool {
	if t.cfg.MaxReplayBody < 0 {
		return false
	}
	buf, err := io.ReadAll(io.LimitReader(req.Body, t.cfg.MaxReplayBody+1))
	if err != nil || int64(len(buf)) > t.cfg.MaxReplayBody {
		req.Body = readCloser{io.MultiReader(bytes.NewReader(buf), req.Body), req.Body}
		return false
	}
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(buf))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	return true
}

func rejected(err error) bool {
	return errors.Is(err, core.ErrOpen) || errors.Is(err, core.ErrTooManyProbes)
}

type readCloser struct {
	io.Reader
	io.Closer
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}

// discard drains a little of a response body and closes it, so that its
// connection goes back to the pool.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	_ = resp.Body.Close()
}
