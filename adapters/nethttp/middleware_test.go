package nethttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fixture struct {
	m     *core.Manager
	clock *core.FakeClock
	srv   *httptest.Server
	calls map[string]*atomic.Int64
	heal  atomic.Bool // makes GET /fail/{id} answer 200
}

// newFixture serves two routes behind the middleware: GET /ok/{id}
// answers 200, GET /fail/{id} answers 500.
func newFixture(t *testing.T, cfg Config, bcfg core.Config) *fixture {
	t.Helper()
	clock := core.NewFakeClock(t0)
	m, err := core.NewManager(core.ManagerConfig{Breaker: bcfg, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Manager = m
	mw, err := Middleware(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{m: m, clock: clock, calls: map[string]*atomic.Int64{"ok": {}, "fail": {}}}
	mux := http.NewServeMux()
	mux.Handle("GET /ok/{id}", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls["ok"].Add(1)
		_, _ = io.WriteString(w, "ok")
	})))
	mux.Handle("GET /fail/{id}", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.calls["fail"].Add(1)
		if !f.heal.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
		}
	})))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, path string, header ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestFailingRouteOpensAloneAndRecovers(t *testing.T) {
	f := newFixture(t, Config{}, core.Config{FailureThreshold: 3, Timeout: 30 * time.Second, SuccessThreshold: 1, HalfOpenMaxRequests: 1})
	for i := range 3 {
		if r := f.get(t, fmt.Sprintf("/fail/%d", i)); r.StatusCode != 500 {
			t.Fatalf("status %d", r.StatusCode)
		}
	}
	f.clock.Advance(10 * time.Second)
	r := f.get(t, "/fail/9")
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") != "20" {
		t.Fatalf("open route: %d Retry-After %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body["error"] != ReasonCircuitOpen || body["endpoint"] != "GET /fail/{id}" {
		t.Fatalf("body %v %v", body, err)
	}
	if f.calls["fail"].Load() != 3 {
		t.Fatalf("the handler ran while open: %d calls", f.calls["fail"].Load())
	}
	if r := f.get(t, "/ok/1"); r.StatusCode != 200 {
		t.Fatalf("healthy route: %d", r.StatusCode)
	}
	// Parameterised paths share one endpoint; the healthy one stayed closed.
	got := []string{}
	for _, s := range f.m.Snapshots() {
		got = append(got, s.Endpoint+"="+s.State.String())
	}
	if strings.Join(got, ",") != "GET /fail/{id}=Open,GET /ok/{id}=Closed" {
		t.Fatalf("breakers %v", got)
	}
	// The upstream heals; after the open time a probe goes through and
	// closes the breaker.
	f.heal.Store(true)
	f.clock.Advance(20 * time.Second)
	b, _ := f.m.Lookup("GET /fail/{id}")
	if r := f.get(t, "/fail/3"); r.StatusCode != 200 || b.State() != core.Closed {
		t.Fatalf("probe: %d, state %s", r.StatusCode, b.State())
	}
}

func TestFourHundredsAreSuccesses(t *testing.T) {
	clock := core.NewFakeClock(t0)
	m, _ := core.NewManager(core.ManagerConfig{Breaker: core.Config{FailureThreshold: 1}, Clock: clock})
	mw, _ := Middleware(Config{Manager: m, EndpointKey: func(*http.Request) string { return "GET /x" }})
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
	for range 5 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	}
	b, _ := m.Lookup("GET /x")
	if b.State() != core.Closed || b.Snapshot().SuccessfulRequests != 5 {
		t.Fatalf("404s: %+v", b.Snapshot())
	}
}

func TestNoWriteHeaderCountsAs200(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{Breaker: core.Config{FailureThreshold: 1}})
	var seen int
	mw, _ := Middleware(Config{Manager: m, EndpointKey: func(*http.Request) string { return "GET /x" },
		Classify: func(status int) core.Outcome { seen = status; return DefaultClassify(status) }})
	mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	if seen != 200 {
		t.Fatalf("status %d", seen)
	}
}

func TestPanicIsAFailureReleasesAndContinues(t *testing.T) {
	clock := core.NewFakeClock(t0)
	m, _ := core.NewManager(core.ManagerConfig{Breaker: core.Config{FailureThreshold: 1}, Clock: clock})
	users, _ := core.NewPerUserBulkhead(core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1}}, core.WithClock(clock))
	mw, _ := Middleware(Config{Manager: m, Bulkheads: true, PerUser: users, UserKey: UserFromHeader("X-User"),
		EndpointKey: func(*http.Request) string { return "GET /boom" }})
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	func() {
		defer func() {
			if recover() != "boom" {
				t.Fatal("the panic did not continue up")
			}
		}()
		r := httptest.NewRequest("GET", "/boom", nil)
		r.Header.Set("X-User", "alice")
		h.ServeHTTP(httptest.NewRecorder(), r)
	}()
	b, _ := m.Lookup("GET /boom")
	bh, _ := m.LookupBulkhead("GET /boom")
	us, _ := users.UserStats("alice")
	if b.State() != core.Open || bh.Stats().Active != 0 || us.Active != 0 {
		t.Fatalf("breaker %s, bulkhead active %d, user active %d", b.State(), bh.Stats().Active, us.Active)
	}
}

func TestPerUserLimit(t *testing.T) {
	clock := core.NewFakeClock(t0)
	m, _ := core.NewManager(core.ManagerConfig{Clock: clock})
	users, _ := core.NewPerUserBulkhead(core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}}, core.WithClock(clock))
	mw, _ := Middleware(Config{Manager: m, PerUser: users, UserKey: UserFromHeader("X-User")})
	hold, entered := make(chan struct{}), make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.Handle("GET /work", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			entered <- struct{}{}
			<-hold
		}
	})))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	do := func(user string, holdIt bool) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/work", nil)
		req.Header.Set("X-User", user)
		if holdIt {
			req.Header.Set("X-Hold", "1")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			return nil
		}
		resp.Body.Close()
		return resp
	}
	done := make(chan struct{})
	go func() { do("alice", true); close(done) }()
	<-entered
	if r := do("alice", false); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "1" {
		t.Fatalf("alice's second request: %d %q", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := do("bob", false); r.StatusCode != 200 {
		t.Fatalf("bob: %d", r.StatusCode)
	}
	close(hold)
	<-done
	if r := do(strings.Repeat("x", 300), false); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("oversized user key: %d", r.StatusCode)
	}
}

func TestBulkheadFullIs503(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}})
	g, _ := NewGuard(Config{Manager: m, Bulkheads: true, BulkheadRetryAfter: 3 * time.Second})
	bh, _ := m.Bulkhead("GET /x")
	held, _ := bh.TryAcquire()
	defer held.Release()
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil), "GET /x", http.NotFoundHandler())
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "3" || !strings.Contains(rec.Body.String(), ReasonBulkheadFull) {
		t.Fatalf("%d %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
}

func TestUnkeyedRequestsPassThrough(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, _ := Middleware(Config{Manager: m})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(w http.ResponseWriter, r *http.Request) {})
	rec := httptest.NewRecorder()
	mw(mux).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil)) // the mux outside: no pattern yet
	if rec.Code != 200 || len(m.Breakers()) != 0 {
		t.Fatalf("%d, %d breakers", rec.Code, len(m.Breakers()))
	}
	// MuxPattern keys a wrapped mux by the pattern it would match.
	mw2, _ := Middleware(Config{Manager: m, EndpointKey: MuxPattern(mux)})
	mw2(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	if _, ok := m.Lookup("GET /x"); !ok {
		t.Fatal("MuxPattern did not key the request")
	}
}

func TestSLORecordsRequestsThatRan(t *testing.T) {
	clock := core.NewFakeClock(t0)
	m, _ := core.NewManager(core.ManagerConfig{Breaker: core.Config{FailureThreshold: 2}, Clock: clock})
	slo, err := core.NewSLOGuard(m, core.SLOGuardConfig{})
	if err != nil {
		t.Fatal(err)
	}
	mw, _ := Middleware(Config{Manager: m, SLO: slo, EndpointKey: func(*http.Request) string { return "GET /x" }})
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(502) }))
	for range 5 { // 2 run and fail, 3 are rejected by the open breaker
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	}
	s, ok := slo.Status("GET /x")
	if !ok || s.Total != 2 || s.Failed != 2 {
		t.Fatalf("SLO saw %+v", s)
	}
}

func TestGuardConfigErrors(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	users, _ := core.NewPerUserBulkhead(core.PerUserConfig{})
	for _, c := range []Config{{}, {Manager: m, PerUser: users}, {Manager: m, BulkheadRetryAfter: -1}} {
		if _, err := Middleware(c); err == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}

func TestRoutePatternKeys(t *testing.T) {
	for _, c := range []struct{ method, pattern, want string }{
		{"GET", "GET /users/{id}", "GET /users/{id}"},
		{"POST", "/upload", "POST /upload"},
		{"GET", "example.com/x", "GET example.com/x"},
		{"GET", "", ""},
		{"BREW", "/coffee", "OTHER /coffee"},
		{"", "/x", "GET /x"},
	} {
		if got := EndpointWithMethod(c.method, c.pattern); got != c.want {
			t.Errorf("%s %q: %q", c.method, c.pattern, got)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	if UserFromContext("k")(r) != "" {
		t.Fatal("no value")
	}
}

var _ = errors.New

func TestRejectionBodyIsValidJSON(t *testing.T) {
	for _, ep := range []string{"GET /users/{id}", `GET /q"uote\back`, "GET /tab\there", "GET /é/ü"} {
		rec := httptest.NewRecorder()
		WriteRejection(rec, nil, Rejection{Reason: ReasonCircuitOpen, Endpoint: ep, Status: 503, RetryAfter: 1500 * time.Millisecond})
		var body struct {
			Error      string `json:"error"`
			Endpoint   string `json:"endpoint"`
			RetryAfter int    `json:"retry_after_seconds"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Endpoint != ep || body.RetryAfter != 2 || body.Error != ReasonCircuitOpen {
			t.Fatalf("%q: %s %v %+v", ep, rec.Body, err, body)
		}
		if rec.Header().Get("Retry-After") != "2" || rec.Code != 503 {
			t.Fatalf("%q: headers %v", ep, rec.Header())
		}
	}
	rec := httptest.NewRecorder()
	WriteRejection(rec, nil, Rejection{Status: 503, RetryAfter: time.Hour})
	if rec.Header().Get("Retry-After") != "3600" {
		t.Fatalf("long Retry-After: %q", rec.Header().Get("Retry-After"))
	}
}
