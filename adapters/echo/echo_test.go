package bulwarkecho_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	bulwarkecho "github.com/bulwark-go/bulwark/adapters/echo"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// fixture is an echo server behind a real listener with a guarded healthy
// route, a failing route, a route that can hold a request and one that
// panics.
type fixture struct {
	t       *testing.T
	srv     *httptest.Server
	e       *echo.Echo
	m       *core.Manager
	clock   *core.FakeClock
	perUser *core.PerUserBulkhead

	usersCalls, failCalls atomic.Int64
	failing               atomic.Bool // /fail returns an error while set
	entered, release      chan struct{}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, clock: core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		entered: make(chan struct{}), release: make(chan struct{})}
	f.failing.Store(true)
	var err error
	f.m, err = core.NewManager(core.ManagerConfig{
		Breaker: core.Config{FailureThreshold: 3, Timeout: 10 * time.Second},
		Clock:   f.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.perUser, err = core.NewPerUserBulkhead(core.PerUserConfig{
		Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue},
	})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := bulwarkecho.Middleware(nethttp.Config{
		Manager:   f.m,
		Bulkheads: true,
		PerUser:   f.perUser,
		UserKey:   nethttp.UserFromHeader("X-User"),
	})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.Use(recoverer, mw) // outside the guard: turns a panic into a 500
	e.GET("/users/:id", func(c echo.Context) error {
		f.usersCalls.Add(1)
		return c.String(http.StatusOK, "user "+c.Param("id"))
	})
	e.GET("/fail/:id", func(c echo.Context) error {
		f.failCalls.Add(1)
		if f.failing.Load() {
			return errors.New("database down") // echo's error handler answers 500
		}
		return c.NoContent(http.StatusOK)
	})
	e.GET("/slow/:id", func(c echo.Context) error {
		if c.QueryParam("hold") != "" {
			f.entered <- struct{}{}
			<-f.release
		}
		return c.NoContent(http.StatusOK)
	})
	e.GET("/panic/:id", func(echo.Context) error { panic("handler bug") })
	e.GET("/err/:kind", func(c echo.Context) error {
		switch c.Param("kind") {
		case "notfound":
			return echo.ErrNotFound
		case "unavailable":
			return echo.NewHTTPError(http.StatusServiceUnavailable, "try later")
		case "internal-notfound":
			return echo.NewHTTPError(http.StatusInternalServerError).SetInternal(echo.ErrNotFound)
		case "wrapped":
			return fmt.Errorf("lookup: %w", echo.ErrNotFound) // echo answers 500
		case "written":
			_ = c.String(http.StatusOK, "partial")
			return errors.New("stream broke") // the client already has its 200
		case "written-500":
			return c.String(http.StatusInternalServerError, "oops")
		}
		return errors.New("boom")
	})
	f.e = e
	f.srv = httptest.NewServer(e)
	t.Cleanup(f.srv.Close)
	return f
}

// recoverer stands in for echo's middleware.Recover, which would bring in
// another module.
func recoverer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("panic: %v", v)
			}
		}()
		return next(c)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) get(path, user string) response {
	f.t.Helper()
	return do(f.t, http.MethodGet, f.srv.URL+path, user)
}

func do(t *testing.T, method, url, user string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Error(err)
		return response{}
	}
	if user != "" {
		req.Header.Set("X-User", user)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return response{}
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, string(body)}
}

func (f *fixture) breaker(endpoint string) *core.Breaker {
	f.t.Helper()
	b, ok := f.m.Lookup(endpoint)
	if !ok {
		f.t.Fatalf("no breaker for %q; have %v", endpoint, names(f.m))
	}
	return b
}

func names(m *core.Manager) []string {
	var s []string
	for _, b := range m.Breakers() {
		s = append(s, b.Name())
	}
	slices.Sort(s)
	return s
}

// checkRejection checks a refusal: status, Retry-After and the JSON body.
func checkRejection(t *testing.T, r response, status int, reason, endpoint string, retryAfter int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %q)", r.status, status, r.body)
	}
	if got := r.header.Get("Retry-After"); got != strconv.Itoa(retryAfter) {
		t.Errorf("Retry-After %q, want %d", got, retryAfter)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var body struct {
		Error             string `json:"error"`
		Endpoint          string `json:"endpoint"`
		RetryAfterSeconds int    `json:"retry_after_seconds"`
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	if body.Error != reason || body.Endpoint != endpoint || body.RetryAfterSeconds != retryAfter {
		t.Errorf("body %+v, want %s %s %d", body, reason, endpoint, retryAfter)
	}
}

func TestFailingRouteOpensItsBreakerOnly(t *testing.T) {
	f := newFixture(t)
	for i := range 3 {
		if r := f.get("/fail/"+strconv.Itoa(i), ""); r.status != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d", i, r.status)
		}
		if r := f.get("/users/"+strconv.Itoa(i), ""); r.status != http.StatusOK {
			t.Fatalf("users %d: status %d", i, r.status)
		}
	}
	if s := f.breaker("GET /fail/:id").State(); s != core.Open {
		t.Fatalf("failing route %v, want Open", s)
	}
	if s := f.breaker("GET /users/:id").State(); s != core.Closed {
		t.Fatalf("healthy route %v, want Closed", s)
	}

	checkRejection(t, f.get("/fail/9", ""), http.StatusServiceUnavailable, nethttp.ReasonCircuitOpen, "GET /fail/:id", 10)
	f.clock.Advance(3500 * time.Millisecond) // 6.5s to half-open: rounded up
	checkRejection(t, f.get("/fail/9", ""), http.StatusServiceUnavailable, nethttp.ReasonCircuitOpen, "GET /fail/:id", 7)
	if n := f.failCalls.Load(); n != 3 {
		t.Errorf("failing handler called %d times, want 3: an open breaker must not call it", n)
	}
	if r := f.get("/users/9", ""); r.status != http.StatusOK || r.body != "user 9" {
		t.Errorf("healthy route: %d %q", r.status, r.body)
	}
}

func TestRecoveryThroughHalfOpen(t *testing.T) {
	f := newFixture(t)
	for range 3 {
		f.get("/fail/1", "")
	}
	if s := f.breaker("GET /fail/:id").State(); s != core.Open {
		t.Fatalf("%v, want Open", s)
	}
	f.failing.Store(false)
	f.clock.Advance(10*time.Second + time.Millisecond)
	for i := range 2 { // SuccessThreshold defaults to 2
		if r := f.get("/fail/1", ""); r.status != http.StatusOK {
			t.Fatalf("probe %d: status %d", i, r.status)
		}
	}
	if s := f.breaker("GET /fail/:id").State(); s != core.Closed {
		t.Fatalf("after successful probes %v, want Closed", s)
	}
	if n := f.failCalls.Load(); n != 5 {
		t.Errorf("handler called %d times, want 5", n)
	}
}

func TestPerUserLimit(t *testing.T) {
	f := newFixture(t)
	held := make(chan response)
	go func() { held <- do(t, http.MethodGet, f.srv.URL+"/slow/1?hold=1", "alice") }()
	<-f.entered

	checkRejection(t, f.get("/slow/2", "alice"), http.StatusTooManyRequests, nethttp.ReasonUserLimit, "GET /slow/:id", 1)
	if r := f.get("/slow/2", "bob"); r.status != http.StatusOK {
		t.Errorf("another user: status %d, want 200", r.status)
	}
	close(f.release)
	if r := <-held; r.status != http.StatusOK {
		t.Errorf("held request: status %d", r.status)
	}
	if st := f.perUser.Stats(); st.All.Active != 0 {
		t.Errorf("per-user slots held after the requests: %d", st.All.Active)
	}
	if r := f.get("/slow/3", "alice"); r.status != http.StatusOK {
		t.Errorf("alice after her request ended: status %d", r.status)
	}
	if s := f.breaker("GET /slow/:id").State(); s != core.Closed {
		t.Errorf("a user's 429 must not count against the breaker: %v", s)
	}
}

func TestRoutePatternIsTheEndpoint(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/users/1", "/users/2", "/users/abc"} {
		if r := f.get(p, ""); r.status != http.StatusOK {
			t.Fatalf("%s: status %d", p, r.status)
		}
	}
	if r := f.get("/no/such/route", ""); r.status != http.StatusNotFound {
		t.Fatalf("unmatched: status %d", r.status)
	}
	if r := do(t, http.MethodDelete, f.srv.URL+"/users/1", ""); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("wrong method: status %d", r.status)
	}
	if r := do(t, "BREW", f.srv.URL+"/users/1", ""); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("made-up method: status %d", r.status)
	}
	if got := names(f.m); !slices.Equal(got, []string{"GET /users/:id"}) {
		t.Errorf("breakers %q, want only GET /users/:id", got)
	}
}

func TestPanicIsAFailureAndReleasesPermits(t *testing.T) {
	f := newFixture(t)
	if r := f.get("/panic/1", "alice"); r.status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500 from the recoverer", r.status)
	}
	if s := f.breaker("GET /panic/:id").Snapshot(); s.FailedRequests != 1 || s.ConsecutiveFailures != 1 {
		t.Errorf("failed %d, consecutive %d; want 1, 1", s.FailedRequests, s.ConsecutiveFailures)
	}
	bh, ok := f.m.LookupBulkhead("GET /panic/:id")
	if !ok {
		t.Fatal("no bulkhead for the panicking route")
	}
	if st := bh.Stats(); st.Active != 0 || st.Admitted != 1 {
		t.Errorf("bulkhead active %d admitted %d, want 0, 1", st.Active, st.Admitted)
	}
	if st := f.perUser.Stats(); st.All.Active != 0 {
		t.Errorf("per-user active %d, want 0", st.All.Active)
	}
	if r := f.get("/users/1", "alice"); r.status != http.StatusOK {
		t.Errorf("next request: status %d", r.status)
	}
}

// The outcome follows the status the client gets from a returned error.
func TestReturnedErrors(t *testing.T) {
	for _, c := range []struct {
		kind    string
		status  int
		failure bool
	}{
		{"plain", 500, true},
		{"notfound", 404, false},
		{"unavailable", 503, true},
		{"internal-notfound", 404, false},
		{"wrapped", 500, true},
		{"written", 200, false},
		{"written-500", 500, true},
	} {
		t.Run(c.kind, func(t *testing.T) {
			f := newFixture(t)
			if r := f.get("/err/"+c.kind, ""); r.status != c.status {
				t.Fatalf("status %d, want %d", r.status, c.status)
			}
			s := f.breaker("GET /err/:kind").Snapshot()
			if got := s.FailedRequests == 1; got != c.failure || s.TotalRequests != 1 {
				t.Errorf("failed %d of %d, want failure %v", s.FailedRequests, s.TotalRequests, c.failure)
			}
		})
	}
}

// Group and route middleware see the route too; a group's catch-all for
// unmatched paths is bounded by its methods.
func TestGroupAndRouteMiddleware(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, err := bulwarkecho.Middleware(nethttp.Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	api := e.Group("/api")
	api.Use(mw)
	api.GET("/users/:id", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	e.GET("/items/:id", func(c echo.Context) error { return c.NoContent(http.StatusOK) }, mw)
	e.GET("/open", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/users/1", 200},
		{"GET", "/api/users/2", 200},
		{"GET", "/items/7", 200},
		{"GET", "/open", 200},
		{"GET", "/api/nothing", 404},
		{"BREW", "/api/nothing", 404},
		{"PROPPATCH", "/api/nothing", 404},
	} {
		if r := do(t, c.method, srv.URL+c.path, ""); r.status != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, r.status, c.status)
		}
	}
	want := []string{"GET /api/*", "GET /api/users/:id", "GET /items/:id"}
	if got := names(m); !slices.Equal(got, want) {
		t.Errorf("breakers %q, want %q", got, want)
	}
}

func TestPreMiddlewareIsUnguarded(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, _ := bulwarkecho.Middleware(nethttp.Config{Manager: m})
	e := echo.New()
	e.Pre(mw)
	e.GET("/users/:id", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/users/1", nil))
	if rec.Code != http.StatusOK || len(m.Breakers()) != 0 {
		t.Errorf("status %d, breakers %q: before routing there is no route, so no guard", rec.Code, names(m))
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := bulwarkecho.Middleware(nethttp.Config{}); err == nil || !strings.Contains(err.Error(), "Manager") {
		t.Errorf("no Manager: %v", err)
	}
	if _, err := bulwarkecho.GuardMiddleware(nil); err == nil {
		t.Error("nil Guard: no error")
	}
}

// The admin mount shown in the package doc: reached with its prefix
// stripped, and outside the guard.
func TestAdminMount(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, _ := bulwarkecho.Middleware(nethttp.Config{Manager: m})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "admin "+r.URL.Path) })
	e := echo.New()
	e.Any("/admin/*", echo.WrapHandler(http.StripPrefix("/admin", h)))
	api := e.Group("/api", mw)
	api.GET("/users/:id", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	srv := httptest.NewServer(e)
	defer srv.Close()
	if got := do(t, http.MethodGet, srv.URL+"/admin/breakers", ""); got.status != http.StatusOK || got.body != "admin /breakers" {
		t.Errorf("admin: %d %q", got.status, got.body)
	}
	do(t, http.MethodGet, srv.URL+"/api/users/1", "")
	if got := names(m); !slices.Equal(got, []string{"GET /api/users/:id"}) {
		t.Errorf("breakers %q", got)
	}
}
