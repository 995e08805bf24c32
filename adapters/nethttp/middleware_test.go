package nethttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/bulwark-go/bulwark/events"
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

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// breakerOnly is a ManagerConfig whose endpoints have the breaker cfg and
// no other policy.
func breakerOnly(cfg core.BreakerConfig) core.ManagerConfig {
	return core.ManagerConfig{Defaults: core.EndpointConfig{Breaker: &cfg}}
}

// newManager returns a Manager of cfg on a FakeClock.
func newManager(t testing.TB, cfg core.ManagerConfig) (*core.Manager, *core.FakeClock) {
	t.Helper()
	clock := core.NewFakeClock(t0)
	cfg.Clock = clock
	m, err := core.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, clock
}

// endpoint returns m's endpoint name, making it if need be.
func endpoint(t testing.TB, m *core.Manager, name string) *core.Endpoint {
	t.Helper()
	e, err := m.Endpoint(name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type fixture struct {
	m     *core.Manager
	clock *core.FakeClock
	srv   *httptest.Server
	calls map[string]*atomic.Int64
	heal  atomic.Bool // makes GET /fail/{id} answer 200
}

// newFixture serves two routes behind the middleware: GET /ok/{id}
// answers 200, GET /fail/{id} answers 500.
func newFixture(t *testing.T, cfg Config, mcfg core.ManagerConfig) *fixture {
	t.Helper()
	m, clock := newManager(t, mcfg)
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

// rejectionBody decodes a rejection's JSON body.
type rejectionBody struct {
	Error      string `json:"error"`
	Endpoint   string `json:"endpoint"`
	RetryAfter int    `json:"retry_after_seconds"`
}

func decodeRejection(t *testing.T, body io.Reader) rejectionBody {
	t.Helper()
	var b rejectionBody
	if err := json.NewDecoder(body).Decode(&b); err != nil {
		t.Fatalf("rejection body: %v", err)
	}
	return b
}

func TestFailingRouteOpensAloneAndRecovers(t *testing.T) {
	f := newFixture(t, Config{}, breakerOnly(core.BreakerConfig{FailureThreshold: 3, Timeout: 30 * time.Second, SuccessThreshold: 1, HalfOpenMaxRequests: 1}))
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
	if ct, cc := r.Header.Get("Content-Type"), r.Header.Get("Cache-Control"); ct != "application/json" || cc != "no-store" {
		t.Fatalf("rejection headers: Content-Type %q, Cache-Control %q", ct, cc)
	}
	if body := decodeRejection(t, r.Body); body != (rejectionBody{"circuit_open", "GET /fail/{id}", 20}) {
		t.Fatalf("body %+v", body)
	}
	if f.calls["fail"].Load() != 3 {
		t.Fatalf("the handler ran while open: %d calls", f.calls["fail"].Load())
	}
	if r := f.get(t, "/ok/1"); r.StatusCode != 200 {
		t.Fatalf("healthy route: %d", r.StatusCode)
	}
	// Parameterised paths share one endpoint; the healthy one stayed closed.
	got := []string{}
	for _, e := range f.m.Endpoints() {
		got = append(got, e.Name()+"="+e.Breaker().State().String())
	}
	if strings.Join(got, ",") != "GET /fail/{id}=Open,GET /ok/{id}=Closed" {
		t.Fatalf("breakers %v", got)
	}
	// The upstream heals; after the open time a probe goes through and
	// closes the breaker.
	f.heal.Store(true)
	f.clock.Advance(20 * time.Second)
	e, _ := f.m.Lookup("GET /fail/{id}")
	if r := f.get(t, "/fail/3"); r.StatusCode != 200 || e.Breaker().State() != events.Closed {
		t.Fatalf("probe: %d, state %s", r.StatusCode, e.Breaker().State())
	}
}

func TestFourHundredsAreSuccesses(t *testing.T) {
	m, _ := newManager(t, breakerOnly(core.BreakerConfig{FailureThreshold: 1}))
	mw, _ := Middleware(Config{Manager: m, EndpointKey: func(*http.Request) string { return "GET /x" }})
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
	for range 5 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	}
	e, _ := m.Lookup("GET /x")
	if s := e.Breaker().Snapshot(); e.Breaker().State() != events.Closed || s.SuccessfulRequests != 5 {
		t.Fatalf("404s: %+v", s)
	}
}

func TestNoWriteHeaderCountsAs200(t *testing.T) {
	m, _ := newManager(t, breakerOnly(core.BreakerConfig{FailureThreshold: 1}))
	var seen int
	mw, _ := Middleware(Config{Manager: m, EndpointKey: func(*http.Request) string { return "GET /x" },
		Classify: func(status int) core.Outcome { seen = status; return DefaultClassify(status) }})
	mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	if seen != 200 {
		t.Fatalf("status %d", seen)
	}
}

func TestClassifyIgnoredCountsNowhere(t *testing.T) {
	m, _ := newManager(t, core.ManagerConfig{Defaults: core.EndpointConfig{SLO: &core.SLOConfig{}}})
	mw, _ := Middleware(Config{Manager: m, EndpointKey: func(*http.Request) string { return "GET /x" },
		Classify: func(int) core.Outcome { return core.Ignored }})
	mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(502) })).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	e, _ := m.Lookup("GET /x")
	if s := e.Breaker().Snapshot(); s.TotalRequests != 0 {
		t.Errorf("an ignored request reached the breaker's counts: %+v", s)
	}
	if s := e.SLO().Status(); s.Total != 0 {
		t.Errorf("an ignored request reached the SLO: %+v", s)
	}
	if d := e.Durations(); d.Count != 1 {
		t.Errorf("its duration was not measured: %d observations", d.Count)
	}
}

func TestPanicIsAFailureReleasesAndContinues(t *testing.T) {
	m, _ := newManager(t, core.ManagerConfig{
		Defaults: core.EndpointConfig{
			Breaker:  &core.BreakerConfig{FailureThreshold: 1},
			Bulkhead: &core.BulkheadConfig{},
			SLO:      &core.SLOConfig{},
		},
		PerUser: &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1}},
	})
	mw, _ := Middleware(Config{Manager: m, UserKey: UserFromHeader("X-User"),
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
	e, _ := m.Lookup("GET /boom")
	us, _ := m.PerUser().UserStats("alice")
	if e.Breaker().State() != events.Open || e.Bulkhead().Stats().Active != 0 || us.Active != 0 {
		t.Fatalf("breaker %s, bulkhead active %d, user active %d", e.Breaker().State(), e.Bulkhead().Stats().Active, us.Active)
	}
	if s := e.SLO().Status(); s.Total != 1 || s.Failed != 1 {
		t.Fatalf("SLO %+v, want the panic as one failure", s)
	}
}

func TestPerUserLimit(t *testing.T) {
	m, _ := newManager(t, core.ManagerConfig{
		PerUser: &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}},
	})
	mw, _ := Middleware(Config{Manager: m, UserKey: UserFromHeader("X-User")})
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
	var releaseOnce sync.Once
	releaseHeld := func() { releaseOnce.Do(func() { close(hold) }) }
	defer releaseHeld() // before srv.Close, which waits for the held request
	type result struct {
		status int
		header http.Header
		body   rejectionBody
	}
	do := func(user string, holdIt bool) result {
		req, _ := http.NewRequest("GET", srv.URL+"/work", nil)
		req.Header.Set("X-User", user)
		if holdIt {
			req.Header.Set("X-Hold", "1")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Error(err)
			return result{}
		}
		defer resp.Body.Close()
		r := result{status: resp.StatusCode, header: resp.Header}
		_ = json.NewDecoder(resp.Body).Decode(&r.body)
		return r
	}
	done := make(chan struct{})
	go func() { do("alice", true); close(done) }()
	<-entered
	if r := do("alice", false); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" ||
		r.body != (rejectionBody{"user_limit", "GET /work", 1}) {
		t.Fatalf("alice's second request: %d %q %+v", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r := do("bob", false); r.status != 200 {
		t.Fatalf("bob: %d", r.status)
	}
	releaseHeld()
	<-done
	if r := do(strings.Repeat("x", 300), false); r.status != http.StatusBadRequest || r.body.Error != "invalid_user" {
		t.Fatalf("oversized user key: %d %+v", r.status, r.body)
	}
	if r := do("", false); r.status != 200 {
		t.Fatalf("no user key: %d, want the request to skip the per-user bulkhead", r.status)
	}
	e, _ := m.Lookup("GET /work")
	if s := e.Breaker().Snapshot(); s.RejectedRequests != 0 || s.TotalRequests != 3 {
		t.Fatalf("breaker %+v: refusals of the per-user bulkhead must not reach it", s)
	}
	if st := m.PerUser().Stats(); st.All.Active != 0 {
		t.Fatalf("per-user slots still held: %d", st.All.Active)
	}
}

func TestBulkheadFullIs503(t *testing.T) {
	m, _ := newManager(t, core.ManagerConfig{Endpoints: map[string]core.EndpointConfig{
		"GET /x": {Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue, RetryAfter: 3 * time.Second}},
	}})
	g, err := NewGuard(Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	e := endpoint(t, m, "GET /x")
	held, _ := e.Bulkhead().TryAcquire()
	defer held.Release()
	rec := httptest.NewRecorder()
	if tk, ok := g.Enter(rec, httptest.NewRequest("GET", "/x", nil), "GET /x"); ok || tk != nil {
		t.Fatalf("a full bulkhead admitted the request: %v %v", tk, ok)
	}
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "3" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if body := decodeRejection(t, rec.Body); body != (rejectionBody{"bulkhead_full", "GET /x", 3}) {
		t.Fatalf("body %+v", body)
	}
	if s := e.Breaker().Snapshot(); s.TotalRequests != 0 || s.RejectedRequests != 0 {
		t.Fatalf("the breaker saw a request the bulkhead refused: %+v", s)
	}
}

func TestBulkheadTimeoutIs503(t *testing.T) {
	m, clock := newManager(t, core.ManagerConfig{Defaults: core.EndpointConfig{
		Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: 1, QueueTimeout: 50 * time.Millisecond},
	}})
	mw, _ := Middleware(Config{Manager: m, EndpointKey: func(*http.Request) string { return "GET /x" }})
	e := endpoint(t, m, "GET /x")
	held, _ := e.Bulkhead().TryAcquire()
	defer held.Release()
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("the handler ran") })).
			ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	}()
	if !clock.WaitForTimers(1, 5*time.Second) {
		<-done
		t.Fatalf("the request never queued: %d", rec.Code)
	}
	clock.Advance(50 * time.Millisecond)
	<-done
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if body := decodeRejection(t, rec.Body); body.Error != "bulkhead_timeout" {
		t.Fatalf("body %+v", body)
	}
}

// An endpoint gets a bulkhead only when its configuration gives it one.
func TestBulkheadOnlyWhereConfigured(t *testing.T) {
	m, _ := newManager(t, core.ManagerConfig{Endpoints: map[string]core.EndpointConfig{
		"GET /limited": {Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}},
	}})
	mw, _ := Middleware(Config{Manager: m})
	entered, release := make(chan struct{}, 3), make(chan struct{})
	handler := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("hold") {
			entered <- struct{}{}
			<-release
		}
	})
	mux := http.NewServeMux()
	mux.Handle("GET /open", mw(handler))
	mux.Handle("GET /limited", mw(handler))
	codes := make(chan int, 4)
	for _, p := range []string{"/open?hold", "/open?hold", "/limited?hold"} {
		go func() {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
			codes <- rec.Code
		}()
	}
	for range 3 {
		<-entered // each handler holds its slots until release
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/limited", nil))
	if rec.Code != 503 {
		t.Errorf("a second request to the limited route: %d, want 503", rec.Code)
	}
	close(release)
	for range 3 {
		if c := <-codes; c != 200 {
			t.Errorf("held request: %d", c)
		}
	}
	open, _ := m.Lookup("GET /open")
	limited, _ := m.Lookup("GET /limited")
	if open.Bulkhead() != nil || open.Config().Bulkhead != nil {
		t.Errorf("an endpoint configured without a bulkhead has one: %+v", open.Config().Bulkhead)
	}
	if limited.Bulkhead() == nil {
		t.Fatal("the endpoint configured with a bulkhead has none")
	}
	if s := limited.Bulkhead().Stats(); s.MaxConcurrent != 1 || s.Rejected != 1 || s.Active != 0 {
		t.Errorf("limited bulkhead %+v", s)
	}
}

// A bulkhead added at runtime applies from the next request; the middleware
// need not be rebuilt.
func TestReconfiguredEndpointAppliesAtOnce(t *testing.T) {
	m, _ := newManager(t, core.ManagerConfig{})
	g, _ := NewGuard(Config{Manager: m})
	req := httptest.NewRequest("GET", "/x", nil)
	tk, ok := g.Enter(httptest.NewRecorder(), req, "GET /x")
	if !ok || tk == nil {
		t.Fatal("refused")
	}
	tk.Finish(200, false)
	if err := m.Reconfigure("GET /x", core.EndpointConfig{Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}}); err != nil {
		t.Fatal(err)
	}
	first, ok := g.Enter(httptest.NewRecorder(), req, "GET /x")
	if !ok {
		t.Fatal("the first request was refused")
	}
	rec := httptest.NewRecorder()
	if _, ok := g.Enter(rec, req, "GET /x"); ok || rec.Code != 503 {
		t.Fatalf("the new bulkhead did not apply: admitted %v, status %d", ok, rec.Code)
	}
	first.Finish(200, false)
}

func TestUnkeyedRequestsPassThrough(t *testing.T) {
	m, _ := newManager(t, core.ManagerConfig{})
	mw, _ := Middleware(Config{Manager: m})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /x", func(w http.ResponseWriter, r *http.Request) {})
	rec := httptest.NewRecorder()
	mw(mux).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil)) // the mux outside: no pattern yet
	if rec.Code != 200 || len(m.Endpoints()) != 0 {
		t.Fatalf("%d, %d endpoints", rec.Code, len(m.Endpoints()))
	}
	// MuxPattern keys a wrapped mux by the pattern it would match.
	mw2, _ := Middleware(Config{Manager: m, EndpointKey: MuxPattern(mux)})
	mw2(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	if _, ok := m.Lookup("GET /x"); !ok {
		t.Fatal("MuxPattern did not key the request")
	}
	mw2(mux).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nothing", nil))
	if n := len(m.Endpoints()); n != 1 {
		t.Fatalf("an unmatched path made an endpoint: %d endpoints", n)
	}
}

// Past the Manager's bound a request runs unguarded rather than fail.
func TestPastMaxEndpointsRunsUnguarded(t *testing.T) {
	m, _ := newManager(t, core.ManagerConfig{MaxEndpoints: 1})
	mw, _ := Middleware(Config{Manager: m})
	mux := http.NewServeMux()
	mux.Handle("GET /a", mw(http.NotFoundHandler()))
	mux.Handle("GET /b", mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) })))
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/a", nil))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/b", nil))
	if rec.Code != 204 || len(m.Endpoints()) != 1 {
		t.Fatalf("%d, %d endpoints", rec.Code, len(m.Endpoints()))
	}
}

// The endpoint's SLO hears of every request that ran, panics included, and
// of none that a policy refused.
func TestSLORecordsRequestsThatRan(t *testing.T) {
	m, _ := newManager(t, core.ManagerConfig{
		Defaults: core.EndpointConfig{
			Breaker:  &core.BreakerConfig{FailureThreshold: 2},
			Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue},
			SLO:      &core.SLOConfig{},
		},
		PerUser: &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}},
	})
	g, err := NewGuard(Config{Manager: m, UserKey: UserFromHeader("X-User")})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(name, user string, status int) bool {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("X-User", user)
		tk, ok := g.Enter(httptest.NewRecorder(), r, name)
		if ok {
			tk.Finish(status, false)
		}
		return ok
	}
	// Endpoint a: one success, then two failures open the breaker, whose
	// three rejections the SLO must not see.
	serve("a", "u", 200)
	for range 5 {
		serve("a", "u", 502)
	}
	a := endpoint(t, m, "a")
	if s := a.SLO().Status(); s.Total != 3 || s.Failed != 2 {
		t.Errorf("after breaker rejections the SLO saw %+v, want 3 requests, 2 failed", s)
	}
	if s := a.Breaker().Snapshot(); s.RejectedRequests != 3 {
		t.Errorf("breaker rejected %d, want 3", s.RejectedRequests)
	}
	// Endpoint b: a request in flight holds the bulkhead's one slot and
	// alice's one per-user slot; refusals by either are not recorded.
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-User", "alice")
	held, ok := g.Enter(httptest.NewRecorder(), r, "b")
	if !ok {
		t.Fatal("first request to b refused")
	}
	if serve("b", "alice", 200) || serve("b", "bob", 200) {
		t.Fatal("a request was admitted past a full per-user or endpoint bulkhead")
	}
	held.Finish(http.StatusInternalServerError, false)
	b := endpoint(t, m, "b")
	if s := b.SLO().Status(); s.Total != 1 || s.Failed != 1 {
		t.Errorf("after bulkhead refusals the SLO saw %+v, want the one request that ran", s)
	}
}

// The default endpoint key is the ServeMux pattern with the method in
// front.
func TestDefaultEndpointKey(t *testing.T) {
	m, _ := newManager(t, core.ManagerConfig{})
	g, err := NewGuard(Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, pattern, want string }{
		{"GET", "GET /users/{id}", "GET /users/{id}"},
		{"POST", "/upload", "POST /upload"},
		{"GET", "example.com/x", "GET example.com/x"},
		{"GET", "", ""},
		{"BREW", "/coffee", "OTHER /coffee"},
		{"", "/x", "GET /x"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Method, r.Pattern = c.method, c.pattern
		if got := g.cfg.EndpointKey(r); got != c.want {
			t.Errorf("%s %q: %q", c.method, c.pattern, got)
		}
	}
}

type ctxKey struct{}

func TestUserKeys(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	if UserFromContext(ctxKey{})(r) != "" || UserFromHeader("x-user")(r) != "" {
		t.Fatal("a user from nowhere")
	}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, "alice"))
	r.Header.Set("X-User", "bob")
	if u := UserFromContext(ctxKey{})(r); u != "alice" {
		t.Errorf("from context: %q", u)
	}
	if u := UserFromHeader("x-user")(r); u != "bob" {
		t.Errorf("from header: %q", u)
	}
}

func TestRejectionBodyIsValidJSON(t *testing.T) {
	for _, ep := range []string{"GET /users/{id}", `GET /q"uote\back`, "GET /tab\there", "GET /é/ü"} {
		rec := httptest.NewRecorder()
		WriteRejection(rec, nil, Rejection{Reason: "circuit_open", Endpoint: ep, Status: 503, RetryAfter: 1500 * time.Millisecond})
		var body rejectionBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body != (rejectionBody{"circuit_open", ep, 2}) {
			t.Fatalf("%q: %s %v %+v", ep, rec.Body, err, body)
		}
		if rec.Header().Get("Retry-After") != "2" || rec.Code != 503 {
			t.Fatalf("%q: headers %v", ep, rec.Header())
		}
	}
	for _, c := range []struct {
		after time.Duration
		want  string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {time.Hour, "3600"}} {
		rec := httptest.NewRecorder()
		WriteRejection(rec, nil, Rejection{Status: 503, RetryAfter: c.after})
		if got := rec.Header().Get("Retry-After"); got != c.want {
			t.Errorf("RetryAfter %v: header %q, want %q", c.after, got, c.want)
		}
	}
}

// A Reject of one's own gets the refusal with its reason, status, endpoint
// and the policy's error.
func TestCustomReject(t *testing.T) {
	m, _ := newManager(t, core.ManagerConfig{})
	var got Rejection
	mw, _ := Middleware(Config{Manager: m, EndpointKey: func(*http.Request) string { return "GET /x" },
		Reject: func(w http.ResponseWriter, _ *http.Request, rej Rejection) {
			got = rej
			w.WriteHeader(599)
		}})
	endpoint(t, m, "GET /x").Breaker().ForceOpen("maintenance")
	rec := httptest.NewRecorder()
	mw(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	var re *core.RejectedError
	if rec.Code != 599 || got.Reason != "circuit_open" || got.Status != 503 || got.Endpoint != "GET /x" ||
		!errors.As(got.Err, &re) || !errors.Is(got.Err, core.ErrOpen) {
		t.Fatalf("status %d, rejection %+v", rec.Code, got)
	}
}
