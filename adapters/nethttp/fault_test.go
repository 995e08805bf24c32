package nethttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/bulwark-go/bulwark/events"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// faultManager returns a Manager with fault injection on, on a FakeClock,
// whose breakers open after three failures in a row. Experiments left
// running are stopped when the test ends, so that their timer goroutine
// ends too.
func faultManager(t *testing.T) (*core.Manager, *core.FakeClock) {
	t.Helper()
	m, clock := newManager(t, core.ManagerConfig{
		Faults:   &core.FaultLimits{},
		Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 3, Timeout: time.Minute}},
	})
	t.Cleanup(func() {
		for _, f := range m.Faults() {
			m.StopFault(f.ID)
		}
	})
	return m, clock
}

func mustFault(t *testing.T, m *core.Manager, f core.Fault) core.Fault {
	t.Helper()
	got, err := m.StartFault(f)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// faultServer serves GET /x behind the middleware, counting the handler's
// calls, with users named by X-User.
func faultServer(t *testing.T, m *core.Manager) (*httptest.Server, *atomic.Int64, *bytes.Buffer) {
	t.Helper()
	mw, err := Middleware(Config{Manager: m, UserKey: UserFromHeader("X-User")})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("GET /x", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.WriteString(w, "real")
	})))
	srv := httptest.NewUnstartedServer(mux)
	var logs bytes.Buffer
	srv.Config.ErrorLog = log.New(&logs, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &calls, &logs
}

func getWith(t *testing.T, url string, header ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// An injected status answers in place of the handler, with the
// experiment's ID; the breaker counts the failure apart and opens on
// enough of them.
func TestInboundFaultStatus(t *testing.T) {
	m, _ := faultManager(t)
	srv, calls, _ := faultServer(t, m)
	f := mustFault(t, m, core.Fault{ID: "boom", Endpoint: "GET /x", Percent: 100, Status: 500})
	for i := range 3 {
		resp, body, err := getWith(t, srv.URL+"/x")
		if err != nil {
			t.Fatal(err)
		}
		var b struct{ Error, Fault string }
		if err := json.Unmarshal(body, &b); err != nil || resp.StatusCode != 500 || b.Error != "injected fault" || b.Fault != f.ID ||
			resp.Header.Get("X-Bulwark-Fault") != f.ID || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("call %d: %d %v %s", i, resp.StatusCode, resp.Header, body)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("the handler ran %d times", n)
	}
	s := endpoint(t, m, "GET /x").Breaker().Snapshot()
	if s.State != events.Open || s.InjectedFailures != 3 || s.FailedRequests != 0 || s.InjectedStatus != 3 {
		t.Fatalf("breaker %+v", s)
	}
	// The breaker protects the endpoint from calls the experiment does not
	// choose.
	m.StopFault(f.ID)
	resp, body, _ := getWith(t, srv.URL+"/x")
	if resp.StatusCode != 503 || !bytes.Contains(body, []byte("circuit_open")) {
		t.Fatalf("after the experiment: %d %s", resp.StatusCode, body)
	}
}

// An abort drops the connection without an answer, after recording the
// failure, and the server logs nothing.
func TestInboundFaultAbort(t *testing.T) {
	m, _ := faultManager(t)
	srv, calls, logs := faultServer(t, m)
	mustFault(t, m, core.Fault{Endpoint: "GET /x", Percent: 100, Abort: true})
	if resp, _, err := getWith(t, srv.URL+"/x"); err == nil {
		t.Fatalf("got an answer: %d", resp.StatusCode)
	}
	if calls.Load() != 0 {
		t.Fatal("the handler ran")
	}
	if s := endpoint(t, m, "GET /x").Breaker().Snapshot(); s.InjectedAbort != 1 || s.InjectedFailures != 1 || s.FailedRequests != 0 {
		t.Fatalf("breaker %+v", s)
	}
	srv.Close()
	if logs.Len() != 0 {
		t.Fatalf("the server logged %q", logs)
	}
}

// A delay holds the request on the clock, then the handler serves it as
// usual; a request whose context ends while delayed is not served.
func TestInboundFaultLatency(t *testing.T) {
	m, clock := faultManager(t)
	mw, err := Middleware(Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	mustFault(t, m, core.Fault{Endpoint: "GET /x", Percent: 100, Latency: 2 * time.Second})
	timers := clock.Timers() // the experiment's own
	done := make(chan int)
	go func() { done <- serveOnce(h, "GET /x", "").Code }()
	if !clock.WaitForTimers(timers+1, 5*time.Second) {
		t.Fatal("the request is not waiting on the clock")
	}
	if calls.Load() != 0 {
		t.Fatal("served before the delay")
	}
	clock.Advance(2 * time.Second)
	if code := <-done; code != 200 || calls.Load() != 1 {
		t.Fatalf("after the delay: %d, %d calls", code, calls.Load())
	}
	s := endpoint(t, m, "GET /x").Breaker().Snapshot()
	if s.InjectedLatency != 1 || s.TotalRequests != 1 || s.SuccessfulRequests != 1 {
		t.Fatalf("breaker %+v", s)
	}

	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("GET", "/x", nil).WithContext(ctx)
	r.Pattern = "GET /x"
	rec := httptest.NewRecorder()
	go func() { h.ServeHTTP(rec, r); close(done) }()
	if !clock.WaitForTimers(timers+1, 5*time.Second) {
		t.Fatal("the request is not waiting on the clock")
	}
	cancel()
	<-done
	if calls.Load() != 1 || rec.Body.Len() != 0 {
		t.Fatalf("a request gone while delayed was served: %d calls, %q", calls.Load(), rec.Body)
	}
	if n := clock.Timers(); n != timers {
		t.Fatalf("%d timers left, want the experiment's %d", n, timers)
	}
}

// Header and user filters choose which requests get the fault.
func TestInboundFaultFilters(t *testing.T) {
	m, _ := faultManager(t)
	srv, calls, _ := faultServer(t, m)
	mustFault(t, m, core.Fault{Endpoint: "GET /x", Percent: 100, Status: 418, Header: "X-Chaos", HeaderValue: "on"})
	mustFault(t, m, core.Fault{Endpoint: "GET /x", Percent: 100, Status: 429, User: "ann"})
	for _, tc := range []struct {
		header []string
		want   int
	}{
		{nil, 200},
		{[]string{"X-Chaos", "off"}, 200},
		{[]string{"X-Chaos", "on"}, 418},
		{[]string{"X-User", "bob"}, 200},
		{[]string{"X-User", "ann"}, 429},
	} {
		resp, _, err := getWith(t, srv.URL+"/x", tc.header...)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.want {
			t.Errorf("%v: %d, want %d", tc.header, resp.StatusCode, tc.want)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("the handler ran %d times, want 3", n)
	}
	// Statuses under 500 are successes, and never failures.
	if s := endpoint(t, m, "GET /x").Breaker().Snapshot(); s.InjectedFailures != 0 || s.SuccessfulRequests != 5 || s.InjectedStatus != 2 {
		t.Fatalf("breaker %+v", s)
	}
}

func faultTransport(t *testing.T, cfg TransportConfig) (*core.Manager, *core.FakeClock, *upstream, *http.Client) {
	t.Helper()
	m, clock := faultManager(t)
	up := newUpstream(t)
	cfg.Manager = m
	cfg.EndpointKey = func(*http.Request) string { return "upstream" }
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	cfg.Base = base
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, clock, up, &http.Client{Transport: tr}
}

// Outbound, a status is a response of the Transport's own, an abort an
// error: the upstream is never called, nothing is retried, and the breaker
// counts the failures apart.
func TestOutboundFaults(t *testing.T) {
	m, _, up, c := faultTransport(t, TransportConfig{})
	f := mustFault(t, m, core.Fault{ID: "down", Endpoint: "upstream", Percent: 100, Status: 503})
	resp, err := c.Get(up.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("X-Bulwark-Fault") != "down" || string(body) != `{"error":"injected fault","fault":"down"}`+"\n" {
		t.Fatalf("got %d %v %q", resp.StatusCode, resp.Header, body)
	}
	m.StopFault(f.ID)
	mustFault(t, m, core.Fault{ID: "cut", Endpoint: "upstream", Percent: 100, Abort: true})
	_, err = c.Get(up.srv.URL)
	if !errors.Is(err, http.ErrAbortHandler) {
		t.Fatalf("abort: %v", err)
	}
	if n := up.requests.Load(); n != 0 {
		t.Fatalf("the upstream got %d requests", n)
	}
	s := endpoint(t, m, "upstream").Breaker().Snapshot()
	if s.InjectedFailures != 2 || s.FailedRequests != 0 || s.TotalRequests != 0 || s.InjectedStatus != 1 || s.InjectedAbort != 1 {
		t.Fatalf("breaker %+v", s)
	}
	// The breaker opens on injected failures as on real ones.
	_, _ = c.Get(up.srv.URL)
	if st := endpoint(t, m, "upstream").Breaker().State(); st != events.Open {
		t.Fatalf("after three injected failures: %v", st)
	}
}

// A failing injected answer goes to the Fallback; a delay holds the
// request on the clock before it is sent.
func TestOutboundFaultFallbackAndLatency(t *testing.T) {
	var seen []int
	m, clock, up, c := faultTransport(t, TransportConfig{Fallback: func(req *http.Request, resp *http.Response, err error) (*http.Response, error) {
		code := 0
		if resp != nil {
			code = resp.StatusCode
			resp.Body.Close()
		}
		seen = append(seen, code)
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
	}})
	mustFault(t, m, core.Fault{ID: "s", Endpoint: "upstream", Percent: 100, Status: 502})
	resp, err := c.Get(up.srv.URL)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("fallback: %v %v", resp, err)
	}
	m.StopFault("s")
	mustFault(t, m, core.Fault{ID: "a", Endpoint: "upstream", Percent: 100, Abort: true})
	if resp, err := c.Get(up.srv.URL); err != nil || resp.StatusCode != 200 {
		t.Fatalf("fallback: %v %v", resp, err)
	}
	if len(seen) != 2 || seen[0] != 502 || seen[1] != 0 {
		t.Fatalf("the Fallback saw %v", seen)
	}
	m.StopFault("a")

	mustFault(t, m, core.Fault{ID: "slow", Endpoint: "upstream", Percent: 100, Latency: time.Second})
	timers := clock.Timers()
	done := make(chan error, 1)
	go func() {
		resp, err := c.Get(up.srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	if !clock.WaitForTimers(timers+1, 5*time.Second) {
		t.Fatal("the request is not waiting on the clock")
	}
	if up.requests.Load() != 0 {
		t.Fatal("sent before the delay")
	}
	clock.Advance(time.Second)
	if err := <-done; err != nil || up.requests.Load() != 1 {
		t.Fatalf("after the delay: %v, %d requests", err, up.requests.Load())
	}
}
