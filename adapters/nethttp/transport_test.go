package nethttp

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/retryafter"
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
	clock *core.FakeClock
	tr    *Transport
	c     *http.Client
}

func newTransport(t *testing.T, bcfg core.Config, cfg TransportConfig) *transportFixture {
	t.Helper()
	clock := core.NewFakeClock(time.Now())
	m, err := core.NewManager(core.ManagerConfig{Breaker: bcfg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Manager = m
	if cfg.Base == nil {
		cfg.Base = &http.Transport{MaxIdleConnsPerHost: 4}
	}
	cfg.Retry.NoJitter = true
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &transportFixture{m: m, clock: clock, tr: tr, c: &http.Client{Transport: tr}}
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
		if f.clock.WaitForTimers(1, 20*time.Millisecond) {
			d, _ := f.clock.NextTimer()
			waits = append(waits, d)
			f.clock.Advance(d)
		}
	}
}

func TestTransportRetriesAndHonoursRetryAfter(t *testing.T) {
	u := newUpstream(t, 503, 429, 500)
	u.header[2] = http.Header{"Retry-After": {"3"}}
	f := newTransport(t, core.Config{FailureThreshold: 10}, TransportConfig{Retry: core.RetryConfig{MaxAttempts: 4, InitialBackoff: 100 * time.Millisecond}})
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
	if len(waits) != 3 || waits[0] != want[0] || waits[1] != want[1] || waits[2] != want[2] {
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
	if s := f.tr.RetryStats(); s.Retries != 3 || s.SuccessesAfterRetry != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestTransportRetryAfterHTTPDate(t *testing.T) {
	now := time.Now()
	d, ok := retryafter.Parse(now.Add(90*time.Second).UTC().Format(http.TimeFormat), now)
	if !ok || d < 88*time.Second || d > 90*time.Second {
		t.Fatalf("HTTP-date: %s %v", d, ok)
	}
	if _, ok := retryafter.Parse("soon", now); ok {
		t.Fatal("garbage parsed")
	}
	if _, ok := retryafter.Parse("-3", now); ok {
		t.Fatal("negative parsed")
	}
	u := newUpstream(t, 503)
	u.header[1] = http.Header{"Retry-After": {now.Add(2 * time.Hour).UTC().Format(http.TimeFormat)}}
	f := newTransport(t, core.Config{}, TransportConfig{Retry: core.RetryConfig{MaxBackoff: 5 * time.Second}})
	req, _ := http.NewRequest("GET", u.srv.URL, nil)
	resp, err, waits := f.do(t, req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(waits) != 1 || waits[0] != 5*time.Second {
		t.Fatalf("Retry-After beyond MaxBackoff: waits %v", waits)
	}
}

func TestTransportDoesNotRetryUnsafeOrUnretryable(t *testing.T) {
	u := newUpstream(t, 503, 501, 503)
	f := newTransport(t, core.Config{FailureThreshold: 10}, TransportConfig{})
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

func TestTransportBodyTooLargeIsSentOnce(t *testing.T) {
	u := newUpstream(t, 503)
	f := newTransport(t, core.Config{}, TransportConfig{MaxReplayBody: 4})
	req, _ := http.NewRequest("PUT", u.srv.URL, io.NopCloser(strings.NewReader("0123456789")))
	resp, err, _ := f.do(t, req)
	if err != nil || resp.StatusCode != 503 || u.requests.Load() != 1 || u.bodies[0] != "0123456789" {
		t.Fatalf("%v, %d requests, body %q", err, u.requests.Load(), u.bodies)
	}
	resp.Body.Close()
}

func TestTransportBreakerOpensAndShortCircuits(t *testing.T) {
	u := newUpstream(t, 500, 500, 500, 500, 500, 500)
	f := newTransport(t, core.Config{FailureThreshold: 3, Timeout: time.Minute}, TransportConfig{Retry: core.RetryConfig{MaxAttempts: 5}})
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
	if b, ok := f.m.Lookup(strings.TrimPrefix(u.srv.URL, "http://")); !ok || b.State() != core.Open {
		t.Fatal("breaker not keyed by host")
	}
}

func TestTransportTransportErrorsAreFailures(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // a dead port
	f := newTransport(t, core.Config{FailureThreshold: 2}, TransportConfig{Retry: core.RetryConfig{MaxAttempts: 2}})
	req, _ := http.NewRequest("GET", "http://"+addr, nil)
	_, err, _ := f.do(t, req)
	if err == nil {
		t.Fatal("no error from a dead port")
	}
	if b, _ := f.m.Lookup(addr); b.State() != core.Open {
		t.Fatalf("transport errors did not open the breaker: %s", b.State())
	}
}

func TestTransportConfigErrors(t *testing.T) {
	if _, err := NewTransport(TransportConfig{}); err == nil {
		t.Fatal("no manager accepted")
	}
	m, _ := core.NewManager(core.ManagerConfig{})
	if _, err := NewTransport(TransportConfig{Manager: m, MaxReplayBody: -5}); err == nil {
		t.Fatal("bad MaxReplayBody accepted")
	}
	if _, err := NewTransport(TransportConfig{Manager: m, Retry: core.RetryConfig{MaxAttempts: -1}}); err == nil || !strings.Contains(err.Error(), "MaxAttempts") {
		t.Fatalf("bad retry config: %v", err)
	}
}
