package nethttp

import (
	"errors"
	"github.com/bulwark-go/bulwark/events"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// upstream answers from a script of statuses, one per request, then 200.
type upstream struct {
	srv      *httptest.Server
	mu       sync.Mutex
	script   []int
	header   map[int]http.Header // extra headers by request number
	bodies   []string
	requests atomic.Int64
	conns    atomic.Int64
}

func newUpstream(t *testing.T, script ...int) *upstream {
	u := &upstream{script: script, header: map[int]http.Header{}}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(u.requests.Add(1))
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, string(body))
		status := 200
		if n <= len(u.script) {
			status = u.script[n-1]
		}
		for k, v := range u.header[n] {
			w.Header()[k] = v
		}
		u.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, strings.Repeat("x", 1000)) // a body that must be drained
	}))
	u.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.srv.Start()
	t.Cleanup(u.srv.Close)
	return u
}

type transportFixture struct {
	m     *core.Manager
	clock *timerClock
	tr    *Transport
	c     *http.Client
}

// newTransport returns a Transport on a Manager whose endpoints have the
// policies of defaults, their retries without jitter so that waits can be
// checked exactly.
func newTransport(t *testing.T, defaults core.EndpointConfig, cfg TransportConfig) *transportFixture {
	t.Helper()
	rc := core.RetryConfig{}
	if defaults.Retry != nil {
		rc = *defaults.Retry
	}
	rc.NoJitter = true
	defaults.Retry = &rc
	return newTransportWith(t, core.ManagerConfig{Defaults: defaults}, cfg)
}

func newTransportWith(t *testing.T, mcfg core.ManagerConfig, cfg TransportConfig) *transportFixture {
	t.Helper()
	clock := &timerClock{FakeClock: core.NewFakeClock(time.Now()), due: map[*trackedTimer]int64{}}
	mcfg.Clock = clock
	m, err := core.NewManager(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Manager = m
	if cfg.Base == nil {
		cfg.Base = &http.Transport{MaxIdleConnsPerHost: 4}
	}
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if b, ok := cfg.Base.(*http.Transport); ok {
			b.CloseIdleConnections()
		}
	})
	return &transportFixture{m: m, clock: clock, tr: tr, c: &http.Client{Transport: tr}}
}

// timerClock is a FakeClock that remembers when each of its timers is due,
// so that a test can advance it exactly to the next one.
type timerClock struct {
	*core.FakeClock
	mu  sync.Mutex
	due map[*trackedTimer]int64 // pending timers, by the Nanotime they fire at
}

type trackedTimer struct {
	core.Timer
	clock *timerClock
}

func (c *timerClock) NewTimer(d time.Duration) core.Timer {
	at := c.Nanotime() + int64(d)
	t := &trackedTimer{Timer: c.FakeClock.NewTimer(d), clock: c}
	if d > 0 {
		c.mu.Lock()
		c.due[t] = at
		c.mu.Unlock()
	}
	return t
}

func (t *trackedTimer) Stop() bool {
	t.clock.mu.Lock()
	delete(t.clock.due, t)
	t.clock.mu.Unlock()
	return t.Timer.Stop()
}

// next returns how long until the earliest pending timer fires, and false
// when none is pending.
func (c *timerClock) next() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.Nanotime()
	var next int64
	ok := false
	for t, at := range c.due {
		switch {
		case at <= now: // fired
			delete(c.due, t)
		case !ok || at < next:
			next, ok = at, true
		}
	}
	return time.Duration(next - now), ok
}

// host returns the endpoint key the Transport gives requests to u.
func (u *upstream) host() string { return strings.TrimPrefix(u.srv.URL, "http://") }

func breakerCfg(cfg core.BreakerConfig) core.EndpointConfig {
	return core.EndpointConfig{Breaker: &cfg}
}

// do sends req in the background and advances the fake clock through every
// retry wait, returning the waits it saw.
func (f *transportFixture) do(t *testing.T, req *http.Request) (*http.Response, error, []time.Duration) {
	t.Helper()
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := f.c.Do(req)
		done <- result{resp, err}
	}()
	var waits []time.Duration
	for {
		select {
		case r := <-done:
			return r.resp, r.err, waits
		default:
		}
		if !f.clock.WaitForTimers(1, 20*time.Millisecond) {
			continue
		}
		if d, ok := f.clock.next(); ok {
			waits = append(waits, d)
			f.clock.Advance(d)
		}
	}
}

func TestTransportRetriesAndHonoursRetryAfter(t *testing.T) {
	u := newUpstream(t, 503, 429, 500)
	u.header[2] = http.Header{"Retry-After": {"3"}}
	f := newTransport(t, core.EndpointConfig{
		Breaker: &core.BreakerConfig{FailureThreshold: 10},
		Retry:   &core.RetryConfig{MaxAttempts: 4, InitialBackoff: 100 * time.Millisecond},
	}, TransportConfig{})
	req, _ := http.NewRequest("PUT", u.srv.URL+"/item", strings.NewReader("payload"))
	req.GetBody = nil // force buffering
	resp, err, waits := f.do(t, req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 1000 || u.requests.Load() != 4 {
		t.Fatalf("status %d, %d attempts", resp.StatusCode, u.requests.Load())
	}
	want := []time.Duration{100 * time.Millisecond, 3 * time.Second, 400 * time.Millisecond}
	if !slices.Equal(waits, want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	for i, b := range u.bodies {
		if b != "payload" {
			t.Fatalf("attempt %d sent body %q", i+1, b)
		}
	}
	if n := u.conns.Load(); n != 1 {
		t.Fatalf("%d connections for 4 attempts: discarded bodies were not drained", n)
	}
	e, _ := f.m.Lookup(u.host())
	if s := e.Retry().Stats(); s.Calls != 1 || s.Retries != 3 || s.SuccessesAfterRetry != 1 {
		t.Fatalf("retry stats %+v", s)
	}
	if s := e.Breaker().Snapshot(); s.FailedRequests != 3 || s.SuccessfulRequests != 1 {
		t.Fatalf("breaker %+v: every attempt is reported", s)
	}
	if d := e.Durations(); d.Count != 4 {
		t.Fatalf("%d durations for 4 attempts", d.Count)
	}
}

func TestTransportRetryAfterIsCappedAtMaxBackoff(t *testing.T) {
	u := newUpstream(t, 503, 503)
	u.header[1] = http.Header{"Retry-After": {time.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat)}}
	u.header[2] = http.Header{"Retry-After": {"7200"}}
	f := newTransport(t, core.EndpointConfig{Retry: &core.RetryConfig{MaxBackoff: 5 * time.Second}}, TransportConfig{})
	req, _ := http.NewRequest("GET", u.srv.URL, nil)
	resp, err, waits := f.do(t, req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := []time.Duration{5 * time.Second, 5 * time.Second}; !slices.Equal(waits, want) {
		t.Fatalf("Retry-After (HTTP-date, then seconds) beyond MaxBackoff: waits %v, want %v", waits, want)
	}
}

func TestTransportDoesNotRetryUnsafeOrUnretryable(t *testing.T) {
	u := newUpstream(t, 503, 501, 503)
	f := newTransport(t, breakerCfg(core.BreakerConfig{FailureThreshold: 10}), TransportConfig{})
	req, _ := http.NewRequest("POST", u.srv.URL, strings.NewReader("x"))
	resp, err, _ := f.do(t, req)
	if err != nil || resp.StatusCode != 503 || u.requests.Load() != 1 {
		t.Fatalf("POST retried: %v %d", err, u.requests.Load())
	}
	resp.Body.Close()
	req, _ = http.NewRequest("GET", u.srv.URL, nil)
	resp, err, _ = f.do(t, req)
	if err != nil || resp.StatusCode != 501 || u.requests.Load() != 2 {
		t.Fatalf("501 retried: %v %d", err, u.requests.Load())
	}
	resp.Body.Close()
	// An Idempotency-Key makes a POST safe to retry.
	req, _ = http.NewRequest("POST", u.srv.URL, strings.NewReader("x"))
	req.Header.Set("Idempotency-Key", "k1")
	resp, err, _ = f.do(t, req)
	if err != nil || resp.StatusCode != 200 || u.requests.Load() != 4 {
		t.Fatalf("keyed POST: %v %d", err, u.requests.Load())
	}
	resp.Body.Close()
}

func TestTransportRetryAllMethods(t *testing.T) {
	u := newUpstream(t, 503)
	f := newTransport(t, core.EndpointConfig{}, TransportConfig{RetryAllMethods: true})
	req, _ := http.NewRequest("POST", u.srv.URL, strings.NewReader("x"))
	resp, err, _ := f.do(t, req)
	if err != nil || resp.StatusCode != 200 || u.requests.Load() != 2 || u.bodies[1] != "x" {
		t.Fatalf("POST with RetryAllMethods: %v, %d requests, bodies %q", err, u.requests.Load(), u.bodies)
	}
	resp.Body.Close()
}

// Each endpoint retries by its own policy: one attempt for "payments",
// the default three for "search".
func TestTransportRetryPolicyIsTheEndpoints(t *testing.T) {
	u := newUpstream(t, 503, 503, 503, 503)
	f := newTransportWith(t, core.ManagerConfig{
		Defaults:  core.EndpointConfig{Retry: &core.RetryConfig{NoJitter: true}},
		Endpoints: map[string]core.EndpointConfig{"payments": {Retry: &core.RetryConfig{MaxAttempts: 1}}},
	}, TransportConfig{EndpointKey: func(r *http.Request) string { return strings.TrimPrefix(r.URL.Path, "/") }})
	req, _ := http.NewRequest("GET", u.srv.URL+"/payments", nil)
	resp, err, waits := f.do(t, req)
	if err != nil || resp.StatusCode != 503 || u.requests.Load() != 1 || len(waits) != 0 {
		t.Fatalf("payments: %v, %d requests, waits %v", err, u.requests.Load(), waits)
	}
	discard(resp) // drained: the connection is reused
	req, _ = http.NewRequest("GET", u.srv.URL+"/search", nil)
	resp, err, waits = f.do(t, req)
	if err != nil || resp.StatusCode != 503 || u.requests.Load() != 4 || len(waits) != 2 {
		t.Fatalf("search: %v, %d requests, waits %v", err, u.requests.Load(), waits)
	}
	discard(resp) // drained: the connection is reused
	search, _ := f.m.Lookup("search")
	if s := search.Retry().Stats(); s.Exhausted != 1 || s.Retries != 2 {
		t.Fatalf("search retry stats %+v", s)
	}
	if n := u.conns.Load(); n != 1 {
		t.Fatalf("%d connections: discarded bodies were not drained", n)
	}
}

func TestTransportBodyTooLargeIsSentOnce(t *testing.T) {
	u := newUpstream(t, 503)
	f := newTransport(t, core.EndpointConfig{}, TransportConfig{MaxReplayBody: 4})
	req, _ := http.NewRequest("PUT", u.srv.URL, io.NopCloser(strings.NewReader("0123456789")))
	resp, err, _ := f.do(t, req)
	if err != nil || resp.StatusCode != 503 || u.requests.Load() != 1 || u.bodies[0] != "0123456789" {
		t.Fatalf("%v, %d requests, body %q", err, u.requests.Load(), u.bodies)
	}
	resp.Body.Close()
}

func TestTransportBreakerOpensAndShortCircuits(t *testing.T) {
	u := newUpstream(t, 500, 500, 500, 500, 500, 500)
	f := newTransport(t, core.EndpointConfig{
		Breaker: &core.BreakerConfig{FailureThreshold: 3, Timeout: time.Minute},
		Retry:   &core.RetryConfig{MaxAttempts: 5},
	}, TransportConfig{})
	req, _ := http.NewRequest("GET", u.srv.URL, nil)
	_, err, _ := f.do(t, req)
	if !errors.Is(err, core.ErrOpen) || u.requests.Load() != 3 {
		t.Fatalf("retry did not stop when the breaker opened: %v after %d requests", err, u.requests.Load())
	}
	req, _ = http.NewRequest("GET", u.srv.URL, nil)
	_, err, _ = f.do(t, req)
	var re *core.RejectedError
	if !errors.As(err, &re) || u.requests.Load() != 3 {
		t.Fatalf("open breaker touched the upstream: %v, %d requests", err, u.requests.Load())
	}
	if re.RetryAfter() <= 0 {
		t.Fatal("no time to half-open")
	}
	e, ok := f.m.Lookup(u.host())
	if !ok || e.Breaker().State() != events.Open {
		t.Fatal("breaker not keyed by host")
	}
	if s := e.Retry().Stats(); s.AbortedByBreaker != 1 || s.Rejected != 1 {
		t.Fatalf("retry stats %+v", s)
	}
}

func TestTransportTransportErrorsAreFailures(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // a dead port
	f := newTransport(t, core.EndpointConfig{
		Breaker: &core.BreakerConfig{FailureThreshold: 2},
		Retry:   &core.RetryConfig{MaxAttempts: 2},
	}, TransportConfig{})
	req, _ := http.NewRequest("GET", "http://"+addr, nil)
	_, err, _ := f.do(t, req)
	if err == nil {
		t.Fatal("no error from a dead port")
	}
	if e, _ := f.m.Lookup(addr); e.Breaker().State() != events.Open {
		t.Fatalf("transport errors did not open the breaker: %s", e.Breaker().State())
	}
}

// The endpoint's bulkhead bounds the calls in flight; a refusal is its
// *core.RejectedError, the upstream untouched and the body closed. An
// endpoint configured without one has none.
func TestTransportBulkhead(t *testing.T) {
	u := newUpstream(t)
	f := newTransportWith(t, core.ManagerConfig{Endpoints: map[string]core.EndpointConfig{
		"payments": {Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue, RetryAfter: 2 * time.Second}},
	}}, TransportConfig{EndpointKey: func(r *http.Request) string { return strings.TrimPrefix(r.URL.Path, "/") }})
	payments, _ := f.m.Endpoint("payments")
	held, err := payments.Bulkhead().TryAcquire()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", u.srv.URL+"/payments", nil)
	body := &closeTracker{Reader: strings.NewReader("payload")}
	req.Body = body
	_, err = f.tr.RoundTrip(req)
	var re *core.RejectedError
	if !errors.Is(err, core.ErrBulkheadFull) || !errors.As(err, &re) || re.RetryAfter() != 2*time.Second {
		t.Fatalf("full bulkhead: %v", err)
	}
	if !body.closed || u.requests.Load() != 0 {
		t.Fatalf("body closed %v, %d requests sent", body.closed, u.requests.Load())
	}
	held.Release()
	resp, err := f.tr.RoundTrip(mustRequest(t, "GET", u.srv.URL+"/payments"))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after release: %v", err)
	}
	discard(resp)
	if s := payments.Bulkhead().Stats(); s.Active != 0 || s.Rejected != 1 {
		t.Fatalf("bulkhead %+v", s)
	}
	resp, err = f.tr.RoundTrip(mustRequest(t, "GET", u.srv.URL+"/search"))
	if err != nil {
		t.Fatal(err)
	}
	discard(resp)
	if search, _ := f.m.Lookup("search"); search.Bulkhead() != nil {
		t.Fatal("an endpoint configured without a bulkhead has one")
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
