package nethttp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/check"
	"github.com/bulwark-go/bulwark/internal/retryafter"
)

// defaultMaxReplayBody is how much of a request body without GetBody the
// Transport buffers so that it can send it again on a retry.
const defaultMaxReplayBody = 1 << 20

// drainLimit bounds how much of a discarded response body is read so that
// its connection can be reused.
const drainLimit = 64 << 10

// TransportConfig configures a Transport. Only Manager is required; the
// policies (breaker, retry, bulkhead) come from the Manager's
// configuration of each endpoint.
type TransportConfig struct {
	// Base sends the requests. Nil means http.DefaultTransport.
	Base http.RoundTripper
	// Manager supplies each endpoint's policies. Required. Endpoints count
	// against its MaxEndpoints: give outbound calls a Manager of their own
	// when they reach many hosts, so they cannot use up the inbound
	// routes' share. Past the bound, requests are sent unguarded.
	Manager *core.Manager
	// EndpointKey names a request's endpoint. Nil means the request's host
	// (with its port, if any); a name of your own is better, since a port
	// may change between restarts and saved state is found by name.
	EndpointKey func(*http.Request) string
	// RetryAllMethods retries requests of any method. By default only
	// idempotent ones are: GET, HEAD, OPTIONS, TRACE, PUT, DELETE and those
	// with an Idempotency-Key header.
	RetryAllMethods bool
	// MaxReplayBody is how much of a body without GetBody is buffered for
	// retries; a longer body is sent once, not retried. Default 1 MiB;
	// -1 never buffers.
	MaxReplayBody int64
	// Observer, when set, hears what the policies did to each request.
	Observer Observer
}

// Transport is an http.RoundTripper that sends each request through its
// endpoint's policies: the bulkhead, if the endpoint has one, then the
// endpoint's retry policy, whose every attempt asks the breaker first.
// Transport errors, 5xx and 429 are failures; Retry-After is honoured. An
// open breaker fails the request at once with its *core.RejectedError,
// without touching the network.
type Transport struct {
	cfg  TransportConfig
	base http.RoundTripper
}

// NewTransport returns a Transport, or every problem of cfg as
// *core.ConfigError values.
func NewTransport(cfg TransportConfig) (*Transport, error) {
	c := check.New("nethttp.TransportConfig.", configError)
	if cfg.Manager == nil {
		c.Fail("Manager", nil, "is required")
	}
	if isNil(cfg.Base) {
		c.Fail("Base", cfg.Base, "is a nil "+reflect.TypeOf(cfg.Base).String()+": leave Base nil for http.DefaultTransport")
	}
	if cfg.MaxReplayBody < -1 {
		c.Fail("MaxReplayBody", cfg.MaxReplayBody, "must be -1 (never buffer), 0 (the default, 1 MiB) or positive")
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	if cfg.MaxReplayBody == 0 {
		cfg.MaxReplayBody = defaultMaxReplayBody
	}
	t := &Transport{cfg: cfg, base: cfg.Base}
	if t.base == nil {
		t.base = http.DefaultTransport
	}
	return t, nil
}

// isNil reports whether rt holds a nil pointer, func, map, chan or slice:
// a typed nil that would panic on the first request.
func isNil(rt http.RoundTripper) bool {
	if rt == nil {
		return false
	}
	switch v := reflect.ValueOf(rt); v.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Chan, reflect.Slice, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// statusError is an HTTP response counted as a failure: 5xx or 429. It
// tells core.Retry whether to retry (not 501) and how long the server
// asked it to wait.
type statusError struct {
	code       int
	retryAfter time.Duration
	hasAfter   bool
}

func (e *statusError) Error() string {
	return "upstream answered " + strconv.Itoa(e.code) + " " + http.StatusText(e.code)
}

// Retryable reports whether another attempt may help: not for 501.
func (e *statusError) Retryable() bool { return e.code != http.StatusNotImplemented }

// RetryAfter returns the wait the response's Retry-After asked for.
func (e *statusError) RetryAfter() (time.Duration, bool) { return e.retryAfter, e.hasAfter }

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

// RoundTrip sends req through its endpoint's policies, retrying when that
// is safe. The response of the last attempt is returned as is, 5xx
// included; every discarded response body is drained and closed.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ep, err := t.cfg.Manager.Endpoint(t.endpoint(req))
	if err != nil {
		// Past the endpoint bound or an unusable name: send it unguarded
		// rather than fail traffic because of bookkeeping.
		return t.base.RoundTrip(req)
	}
	if bh := ep.Bulkhead(); bh != nil {
		g, err := bh.Acquire(req.Context())
		if err != nil {
			closeBody(req)
			t.rejected(req, ep, bulkheadReason(err), err)
			return nil, err
		}
		defer g.Release()
	}
	obs := t.cfg.Observer
	var before core.State
	if obs != nil {
		before = ep.Breaker().State()
	}
	retry := t.mayRetry(req)
	if retry && req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		// Buffer into a copy: a RoundTripper must not modify the request.
		r2 := *req
		req = &r2
		retry = t.bufferBody(req)
	}
	a := attempt{t: t, req: req, ep: ep}
	if retry {
		err = ep.Retry().Do(req.Context(), a.run)
	} else {
		err = ep.Breaker().Execute(req.Context(), a.run)
	}
	if obs != nil {
		if after := ep.Breaker().State(); after != before {
			obs.Transition(req.Context(), ep.Name(), before, after)
		}
		if a.n == 0 && rejected(err) {
			t.rejected(req, ep, "circuit_open", err)
		}
	}
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
	ep   *core.Endpoint
	n    int
	end  int64 // Clock.Nanotime at the end of the last attempt
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
	obs := a.t.cfg.Observer
	if obs != nil {
		var wait time.Duration
		if a.n > 1 {
			wait = time.Duration(start - a.end)
		}
		obs.Attempt(ctx, a.ep.Name(), a.n, wait)
	}
	resp, err := a.t.base.RoundTrip(req)
	a.end = clock.Nanotime()
	d := time.Duration(a.end - start)
	a.ep.ObserveDuration(d)
	if err == nil {
		a.last = resp
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			ra, ok := retryafter.Parse(resp.Header.Get("Retry-After"), clock.Now())
			err = &statusError{code: resp.StatusCode, retryAfter: ra, hasAfter: ok}
		}
	}
	if obs != nil {
		obs.Done(ctx, a.ep.Name(), a.ep.Breaker().Config().Classifier(err), d)
	}
	return err
}

// rejected tells the Observer of a request a policy refused.
func (t *Transport) rejected(req *http.Request, ep *core.Endpoint, reason string, err error) {
	if t.cfg.Observer == nil {
		return
	}
	rej := Rejection{Endpoint: ep.Name(), Reason: reason, Err: err}
	if re, ok := errors.AsType[*core.RejectedError](err); ok {
		rej.RetryAfter = re.RetryAfter()
	}
	t.cfg.Observer.Rejected(req.Context(), rej)
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
