package nethttp

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// serveOnce runs one request to pattern through h and returns the
// recorded response.
func serveOnce(h http.Handler, pattern, user string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/x", nil)
	r.Pattern = pattern
	if user != "" {
		r.Header.Set("X-User", user)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func TestRateLimitsAnswer429WithRateLimitHeaders(t *testing.T) {
	clock := core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	m, err := core.NewManager(core.ManagerConfig{
		Clock:            clock,
		Endpoints:        map[string]core.EndpointConfig{"GET /limited": {RateLimit: &core.RateLimitConfig{Rate: 2, Burst: 2}}},
		PerUserRateLimit: &core.PerUserRateLimitConfig{RateLimit: core.RateLimitConfig{Rate: 1, Burst: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := Middleware(Config{Manager: m, UserKey: UserFromHeader("X-User")})
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { ran++ }))
	// The endpoint's limit: two, then 429 with its policy.
	for i := range 2 {
		if rec := serveOnce(h, "GET /limited", ""); rec.Code != 200 {
			t.Fatalf("call %d: %d", i, rec.Code)
		}
	}
	rec := serveOnce(h, "GET /limited", "")
	var body map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 429 || body["error"] != "rate_limited" || rec.Header().Get("Retry-After") != "1" ||
		rec.Header().Get("RateLimit-Policy") != `"endpoint";q=2;w=1` || rec.Header().Get("RateLimit") != `"endpoint";r=0;t=1` {
		t.Fatalf("refusal: %d %v %v", rec.Code, rec.Header(), body)
	}
	if ran != 2 {
		t.Fatalf("the handler ran %d times, want 2", ran)
	}
	// The user's limit: one call a second per user, whatever the endpoint.
	if rec := serveOnce(h, "GET /free", "ann"); rec.Code != 200 {
		t.Fatalf("ann's first call: %d", rec.Code)
	}
	rec = serveOnce(h, "GET /free", "ann")
	if rec.Code != 429 || rec.Header().Get("RateLimit-Policy") != `"user";q=1;w=1` || !strings.HasPrefix(rec.Header().Get("RateLimit"), `"user";r=0;t=`) {
		t.Fatalf("ann's second call: %d %v", rec.Code, rec.Header())
	}
	if rec := serveOnce(h, "GET /free", "bob"); rec.Code != 200 {
		t.Fatalf("bob is not ann: %d", rec.Code)
	}
	clock.Advance(time.Second)
	if rec := serveOnce(h, "GET /free", "ann"); rec.Code != 200 {
		t.Fatalf("ann a second later: %d", rec.Code)
	}
	// Refusals allocate nothing once their headers are made.
	if testing.Short() {
		return
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Pattern = "GET /limited"
	w := &discardWriter{h: http.Header{}}
	if n := testing.AllocsPerRun(200, func() { clear(w.h); h.ServeHTTP(w, r) }); n > 0 && !raceEnabled {
		t.Fatalf("a rate-limit refusal allocates %v times", n)
	}
}

func TestAdaptiveLimitAnswers503(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Adaptive: &core.AdaptiveConfig{MinLimit: 1, MaxLimit: 1, InitialLimit: 1}}})
	mw, _ := Middleware(Config{Manager: m})
	release := make(chan struct{})
	entered := make(chan struct{})
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	done := make(chan int)
	go func() { done <- serveOnce(h, "GET /x", "").Code }()
	<-entered
	rec := serveOnce(h, "GET /x", "")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "concurrency_limit") || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d %s", rec.Code, rec.Body)
	}
	close(release)
	if code := <-done; code != 200 {
		t.Fatalf("the admitted call: %d", code)
	}
	if s := mustEndpoint(t, m, "GET /x").Adaptive().Stats(); s.InFlight != 0 {
		t.Fatalf("in flight after both ended: %d", s.InFlight)
	}
}

func mustEndpoint(t *testing.T, m *core.Manager, name string) *core.Endpoint {
	t.Helper()
	e, err := m.Endpoint(name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// A handler that runs past its deadline: the client gets the timeout's
// answer in time, whole, and the handler's later writes fail; the breaker
// counts a failure.
func TestTimeoutAnswersForASilentHandler(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{
		Timeout: &core.TimeoutConfig{Request: 50 * time.Millisecond},
		Breaker: &core.BreakerConfig{FailureThreshold: 100},
	}})
	mw, _ := Middleware(Config{Manager: m})
	late := make(chan error, 1)
	ctxErr := make(chan error, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(routed(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // the deadline reaches the handler's context
		ctxErr <- r.Context().Err()
		<-release // and the handler goes on regardless
		_, err := w.Write([]byte("too late"))
		late <- err
	}))))
	defer srv.Close()
	start := time.Now()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body) // whole: Content-Length, not held by the handler
	resp.Body.Close()
	elapsed := time.Since(start)
	if resp.StatusCode != 503 || !strings.Contains(string(body), `"timeout"`) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if elapsed > 2*time.Second {
		t.Fatalf("the answer took %v", elapsed)
	}
	if err := <-ctxErr; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handler context: %v", err)
	}
	close(release)
	if err := <-late; !errors.Is(err, http.ErrHandlerTimeout) {
		t.Fatalf("a write after the timeout: %v", err)
	}
	srv.Close() // waits for the handler to return
	if s := mustEndpoint(t, m, "GET /").Breaker().Snapshot(); s.FailedRequests != 1 || s.Timeouts != 1 {
		t.Fatalf("breaker: %+v, want one failure, a timeout", s)
	}
}

// A response already started is not cut by the deadline.
func TestTimeoutLeavesAStartedResponse(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Timeout: &core.TimeoutConfig{Request: 30 * time.Millisecond}}})
	mw, _ := Middleware(Config{Manager: m})
	srv := httptest.NewServer(routed(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = w.Write([]byte("begun"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		_, _ = w.Write([]byte(" and ended"))
	}))))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "begun and ended" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

// A request answered in time leaves no trace: its own context comes back,
// the alarm is stopped, and nothing runs later.
func TestTimeoutInTime(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Timeout: &core.TimeoutConfig{Request: time.Second}}})
	mw, _ := Middleware(Config{Manager: m})
	var seen context.Context
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Context()
		if _, ok := r.Context().Deadline(); !ok {
			t.Error("no deadline in the handler's context")
		}
		w.WriteHeader(204)
	}))
	r := httptest.NewRequest("GET", "/x", nil)
	r.Pattern = "GET /x"
	own := r.Context()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 204 || r.Context() != own {
		t.Fatalf("code %d; request context restored: %v", rec.Code, r.Context() == own)
	}
	if seen.Err() == nil {
		t.Fatal("the handler's context lives on after the request")
	}
}

func upstreamURL(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestTransportRateLimitRefusesWithoutSending(t *testing.T) {
	var sent atomic.Int32
	url := upstreamURL(t, func(w http.ResponseWriter, _ *http.Request) { sent.Add(1) })
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{RateLimit: &core.RateLimitConfig{Rate: 1, Burst: 1}}})
	tr, _ := NewTransport(TransportConfig{Manager: m})
	client := &http.Client{Transport: tr}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, err = client.Get(url)
	var rej *core.RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, core.ErrRateLimited) || rej.RetryAfter() <= 0 {
		t.Fatalf("second call: %v", err)
	}
	if sent.Load() != 1 {
		t.Fatalf("%d requests reached the upstream", sent.Load())
	}
}

// An attempt that runs out of its own time is retried; the request's
// deadline ends the retries.
func TestTransportTimeouts(t *testing.T) {
	var calls atomic.Int32
	url := upstreamURL(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-r.Context().Done() // the first attempt hangs until cancelled
			return
		}
		w.WriteHeader(200)
	})
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{
		Timeout: &core.TimeoutConfig{Attempt: 50 * time.Millisecond},
		Retry:   &core.RetryConfig{MaxAttempts: 3, InitialBackoff: time.Millisecond, NoJitter: true},
	}})
	tr, _ := NewTransport(TransportConfig{Manager: m})
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || calls.Load() != 2 {
		t.Fatalf("status %d after %d calls, want 200 after 2", resp.StatusCode, calls.Load())
	}

	// Every attempt hangs: the request's deadline stops it all.
	url = upstreamURL(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	m, _ = core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{
		Timeout: &core.TimeoutConfig{Request: 120 * time.Millisecond, Attempt: 50 * time.Millisecond},
		Retry:   &core.RetryConfig{MaxAttempts: 100, InitialBackoff: time.Millisecond, NoJitter: true},
	}})
	tr, _ = NewTransport(TransportConfig{Manager: m})
	start := time.Now()
	_, err = (&http.Client{Transport: tr}).Get(url)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
	e := mustEndpoint(t, m, strings.TrimPrefix(url, "http://"))
	if s := e.Retry().Stats(); s.Attempts < 2 || s.Attempts > 4 {
		t.Fatalf("%d attempts in 120ms of 50ms attempts", s.Attempts)
	}
	if s := e.Breaker().Snapshot(); s.Timeouts < 2 || s.Timeouts != s.FailedRequests {
		t.Fatalf("every attempt timed out, but the breaker counts %d timeouts of %d failures", s.Timeouts, s.FailedRequests)
	}
}

// A slow first attempt is hedged after the delay and the hedge's answer
// wins; the slow one is cancelled.
func TestTransportHedgeWins(t *testing.T) {
	var calls atomic.Int32
	cancelled := make(chan struct{}, 1)
	url := upstreamURL(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select {
			case <-r.Context().Done():
				cancelled <- struct{}{}
			case <-time.After(5 * time.Second):
			}
			return
		}
		_, _ = w.Write([]byte("hedged"))
	})
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Hedge: &core.HedgeConfig{Delay: 20 * time.Millisecond, MaxRatio: 1}}})
	tr, _ := NewTransport(TransportConfig{Manager: m})
	start := time.Now()
	resp, err := (&http.Client{Transport: tr}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hedged" || time.Since(start) > 2*time.Second {
		t.Fatalf("got %q after %v", body, time.Since(start))
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the slow attempt was not cancelled")
	}
	s := mustEndpoint(t, m, strings.TrimPrefix(url, "http://")).Breaker().Snapshot()
	if s.TotalRequests != 1 || s.FailedRequests != 0 {
		t.Fatalf("one call, hedged, is one success: %+v", s)
	}
	if n := mustEndpoint(t, m, strings.TrimPrefix(url, "http://")).Hedges(); n != 1 {
		t.Fatalf("Hedges() = %d, want 1", n)
	}
}

// No hedge for a request that must not be sent twice.
func TestTransportHedgesOnlyIdempotentRequests(t *testing.T) {
	var calls atomic.Int32
	url := upstreamURL(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		time.Sleep(60 * time.Millisecond) // the server being slow, not a wait for a timeout
	})
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Hedge: &core.HedgeConfig{Delay: 10 * time.Millisecond, MaxRatio: 1}}})
	tr, _ := NewTransport(TransportConfig{Manager: m})
	resp, err := (&http.Client{Transport: tr}).Post(url, "text/plain", strings.NewReader("once"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if calls.Load() != 1 {
		t.Fatalf("a POST was sent %d times", calls.Load())
	}
}

func TestTransportFallback(t *testing.T) {
	url := upstreamURL(t, func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{
		Breaker: &core.BreakerConfig{FailureThreshold: 1},
		Retry:   &core.RetryConfig{MaxAttempts: 1},
	}})
	var mu sync.Mutex
	var seen []string
	tr, _ := NewTransport(TransportConfig{Manager: m, Fallback: func(req *http.Request, resp *http.Response, err error) (*http.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, core.ErrOpen):
			seen = append(seen, "refused")
		case resp != nil:
			seen = append(seen, "failed "+resp.Status)
			resp.Body.Close()
		}
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("stale")), Request: req}, nil
	}})
	client := &http.Client{Transport: tr}
	for range 2 {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "stale" {
			t.Fatalf("body %q", body)
		}
	}
	if strings.Join(seen, ", ") != "failed 503 Service Unavailable, refused" {
		t.Fatalf("fallback saw %v", seen)
	}
}

// routed serves h as the route "GET /", so that it has an endpoint.
func routed(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", h)
	return mux
}

// An outbound endpoint's SLO counts the dependency's answers: successes,
// failures after the retries, not a call the breaker refused before its
// first attempt, and not what a fallback made of a failure.
func TestTransportRecordsTheSLO(t *testing.T) {
	var fail atomic.Bool
	url := upstreamURL(t, func(w http.ResponseWriter, _ *http.Request) {
		if fail.Load() {
			w.WriteHeader(http.StatusBadGateway)
		}
	})
	m, _ := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{
		SLO:     &core.SLOConfig{},
		Retry:   &core.RetryConfig{MaxAttempts: 1},
		Breaker: &core.BreakerConfig{FailureThreshold: 2},
	}})
	tr, _ := NewTransport(TransportConfig{Manager: m, Fallback: func(_ *http.Request, resp *http.Response, err error) (*http.Response, error) {
		if resp != nil {
			resp.Body.Close()
		}
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}})
	client := &http.Client{Transport: tr}
	get := func() {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	get()
	fail.Store(true)
	get()
	get() // opens the breaker
	get() // refused: not the dependency's answer
	s := mustEndpoint(t, m, strings.TrimPrefix(url, "http://")).SLO().Status()
	if s.Total != 3 || s.Failed != 2 {
		t.Fatalf("SLO counts %d calls, %d failed; want 3 and 2", s.Total, s.Failed)
	}
}
