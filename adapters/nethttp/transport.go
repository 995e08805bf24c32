package nethttp

import (
	"bytes"
	"context"
	"errors"
	"github.com/bulwark-go/bulwark/events"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/check"
)

// defaultMaxReplayBody is how much of a request body without GetBody the
// Transport buffers so that it can send it again on a retry.
const defaultMaxReplayBody = 1 << 20

// drainLimit bounds how much of a discarded response body is read so that
// its connection can be reused.
const drainLimit = 64 << 10

// TransportConfig configures a Transport. Only Manager is required; the
// policies (rate limit, adaptive limit, bulkhead, breaker, retry, timeouts,
// hedging) come from the Manager's configuration of each endpoint.
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
	// RetryAllMethods retries (and hedges) requests of any method. By
	// default only idempotent ones are: GET, HEAD, OPTIONS, TRACE, PUT,
	// DELETE and those with an Idempotency-Key header.
	RetryAllMethods bool
	// MaxReplayBody is how much of a body without GetBody is buffered for
	// retries; a longer body is sent once, not retried. Default 1 MiB;
	// -1 never buffers.
	MaxReplayBody int64
	// Priority gives a request's priority for an endpoint's adaptive
	// limit. Nil means every request alike.
	Priority func(*http.Request) int
	// Fallback, when set, answers a request that a policy refused (err is
	// a *core.RejectedError, nothing was sent) or that failed (a transport
	// error, a timeout, or resp a failing status after the retries) instead:
	// it returns a response of its own (a cached or default one) or nil
	// and the error to keep it. resp, when not nil, is the last failing
	// response; the Fallback owns its body.
	Fallback func(req *http.Request, resp *http.Response, err error) (*http.Response, error)
	// Observer, when set, hears what the policies did to each request.
	Observer Observer
}

// Transport is an http.RoundTripper that sends each request through its
// endpoint's policies: the rate limit, the adaptive limit and the bulkhead
// if the endpoint has them, then its retry policy, whose every attempt
// asks the breaker first and may be hedged. Transport errors, timeouts,
// 5xx and 429 are failures; Retry-After is honoured. A refusal fails the
// request at once with a *core.RejectedError, without touching the
// network.
//
// A fault experiment running on the endpoint (see core.Manager.StartFault;
// outbound requests have no user, so one filtered by user never applies)
// comes before every policy, once per request: it delays the request on
// its context, then answers it in place of the upstream, without retries
// and without touching the network: a status with a response of its own
// (header X-Bulwark-Fault names the experiment), or an abort with an error
// that matches http.ErrAbortHandler. A failing one (an abort, 5xx or 429)
// goes to the Fallback as the upstream's would. Its outcome is recorded in
// the breaker as an injected one.
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

// isNil reports whether v is an interface holding a nil pointer, map,
// func, channel or slice: a typed nil that would panic on the first request.
func isNil(v any) bool {
	if v == nil {
		return false
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Func, reflect.Chan, reflect.Slice, reflect.Interface:
		return rv.IsNil()
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

// errAttemptTimeout is an attempt that ran out of its own time while the
// request still had some: a failure, and worth another attempt.
var errAttemptTimeout = &attemptTimeoutError{}

type attemptTimeoutError struct{}

func (*attemptTimeoutError) Error() string   { return "nethttp: the attempt timed out" }
func (*attemptTimeoutError) Retryable() bool { return true }

// Is makes the error a deadline too, for callers testing for one.
func (*attemptTimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

func (t *Transport) endpoint(r *http.Request) string {
	if t.cfg.EndpointKey != nil {
		return t.cfg.EndpointKey(r)
	}
	return r.URL.Host
}

func (t *Transport) mayRetry(r *http.Request) bool {
	switch r.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	// The header last: its lookup costs more than the method's test.
	return t.cfg.RetryAllMethods || r.Header.Get("Idempotency-Key") != ""
}

// RoundTrip sends req through its endpoint's policies, retrying and
// hedging when that is safe. The response of the last attempt is returned
// as is, 5xx included; every discarded response body is drained and
// closed.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ep, err := t.cfg.Manager.Endpoint(t.endpoint(req))
	if err != nil {
		// Past the endpoint bound or an unusable name: send it unguarded
		// rather than fail traffic because of bookkeeping.
		return t.base.RoundTrip(req)
	}
	if f, delay := ep.Inject(req.Header.Get, nil); f != nil {
		if delay > 0 && !sleep(req.Context(), t.cfg.Manager.Clock(), delay) {
			closeBody(req)
			return nil, req.Context().Err()
		}
		if f.Status != 0 || f.Abort {
			return t.injected(req, f)
		}
	}
	if rl := ep.RateLimiter(); rl != nil {
		if err := rl.Allow(); err != nil {
			return t.refused(req, ep, "rate_limited", err)
		}
	}
	if al := ep.Adaptive(); al != nil {
		prio := 0
		if t.cfg.Priority != nil {
			prio = t.cfg.Priority(req)
		}
		p, err := al.Acquire(req.Context(), prio)
		if err != nil {
			return t.refused(req, ep, "concurrency_limit", err)
		}
		start := t.cfg.Manager.Clock().Nanotime()
		resp, err := t.guarded(req, ep)
		o := core.Success
		if err != nil {
			o = ep.Breaker().Config().Classifier(err)
		} else if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			o = core.Failure
		}
		p.Done(o, time.Duration(t.cfg.Manager.Clock().Nanotime()-start))
		return resp, err
	}
	return t.guarded(req, ep)
}

// guarded sends req through the endpoint's bulkhead, deadline, breaker,
// retries and hedges, and its fallback.
func (t *Transport) guarded(req *http.Request, ep *core.Endpoint) (*http.Response, error) {
	if bh := ep.Bulkhead(); bh != nil {
		g, err := bh.Acquire(req.Context())
		if err != nil {
			return t.refused(req, ep, bulkheadReason(err), err)
		}
		defer g.Release()
	}
	to := ep.Timeout()
	if to.Request > 0 {
		ctx := t.cfg.Manager.WithTimeout(req.Context(), to.Request)
		defer core.CancelTimeout(ctx)
		req = req.WithContext(ctx)
	}
	obs := t.cfg.Observer
	var before events.State
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
	a := getAttempt(t, req, ep, to.Attempt, retry)
	var err error
	if retry {
		err = ep.Retry().Do(req.Context(), a.runFn)
	} else {
		err = ep.Breaker().Execute(req.Context(), a.runFn)
	}
	n, last := a.n, a.last
	a.release()
	if slo := ep.SLO(); slo != nil && n > 0 {
		// The dependency's answer, before any fallback: a call refused
		// before its first attempt never reached it.
		o := core.Success
		if err != nil {
			o = ep.Breaker().Config().Classifier(err)
		}
		if o != core.Ignored {
			slo.Record(o == core.Success)
		}
	}
	if obs != nil {
		if after := ep.Breaker().State(); after != before {
			obs.Transition(req.Context(), ep.Name(), before, after)
		}
		if n == 0 && rejected(err) {
			t.observeRefusal(req, ep, "circuit_open", err)
		}
	}
	if n == 0 {
		closeBody(req) // no attempt took the body: closing it is ours to do
	}
	if last != nil {
		// Attempts ran out on a failing status: that response is the answer
		// (or the fallback's). When the breaker opened or the context
		// ended, the error says so.
		if err == nil {
			return last, nil
		}
		// AsType, not As: As would move its target to the heap, one
		// allocation per call.
		if _, ok := errors.AsType[*statusError](err); ok && !rejected(err) && req.Context().Err() == nil {
			return t.fallback(req, last, err)
		}
		discard(last)
	}
	if err == nil {
		err = errors.New("nethttp: no response") // unreachable: run sets last on success
	}
	return t.fallback(req, nil, err)
}

// refused answers a request a policy refused before any attempt.
func (t *Transport) refused(req *http.Request, ep *core.Endpoint, reason string, err error) (*http.Response, error) {
	closeBody(req)
	t.observeRefusal(req, ep, reason, err)
	return t.fallback(req, nil, err)
}

// fallback lets the Fallback answer a refused or failed request.
func (t *Transport) fallback(req *http.Request, resp *http.Response, err error) (*http.Response, error) {
	if t.cfg.Fallback == nil {
		if resp != nil {
			return resp, nil
		}
		return nil, err
	}
	return t.cfg.Fallback(req, resp, err)
}

// observeRefusal tells the Observer of a request a policy refused.
func (t *Transport) observeRefusal(req *http.Request, ep *core.Endpoint, reason string, err error) {
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
