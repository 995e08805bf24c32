package bulwarkgin_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	bulwarkgin "github.com/bulwark-go/bulwark/adapters/gin"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

func init() { gin.SetMode(gin.TestMode) }

// fixture is a gin engine behind a real server with a guarded healthy
// route, a failing route, a route that can hold a request and one that
// panics.
type fixture struct {
	t       *testing.T
	srv     *httptest.Server
	m       *core.Manager
	clock   *core.FakeClock
	perUser *core.PerUserBulkhead

	usersCalls, failCalls atomic.Int64
	failing               atomic.Bool // /fail answers 500 while set
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
	mw, err := bulwarkgin.Middleware(nethttp.Config{
		Manager:   f.m,
		Bulkheads: true,
		PerUser:   f.perUser,
		UserKey:   nethttp.UserFromHeader("X-User"),
	})
	if err != nil {
		t.Fatal(err)
	}
	g := gin.New()
	g.HandleMethodNotAllowed = true
	g.Use(gin.RecoveryWithWriter(io.Discard), mw) // Recovery outside the guard turns a panic into a 500
	g.GET("/users/:id", func(c *gin.Context) {
		f.usersCalls.Add(1)
		c.String(http.StatusOK, "user "+c.Param("id"))
	})
	g.GET("/fail/:id", func(c *gin.Context) {
		f.failCalls.Add(1)
		if f.failing.Load() {
			c.AbortWithStatus(http.StatusInternalServerError)
		}
	})
	g.GET("/slow/:id", func(c *gin.Context) {
		if c.Query("hold") != "" {
			f.entered <- struct{}{}
			<-f.release
		}
	})
	g.GET("/panic/:id", func(*gin.Context) { panic("handler bug") })
	f.srv = httptest.NewServer(g)
	t.Cleanup(f.srv.Close)
	return f
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
		t.Fatalf("status %d, want 500 from Recovery", r.status)
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

// A refused request aborts the chain: handlers after the middleware, and
// middleware after it, do not run.
func TestRejectionAbortsTheChain(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, err := bulwarkgin.Middleware(nethttp.Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	var after, handler int
	g := gin.New()
	api := g.Group("/api", mw, func(c *gin.Context) { after++; c.Next() })
	api.GET("/orders/:id", func(c *gin.Context) { handler++ })
	b, _ := m.Breaker("GET /api/orders/:id")
	b.ForceOpen("maintenance")

	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/orders/1", nil))
	if rec.Code != http.StatusServiceUnavailable || after != 0 || handler != 0 {
		t.Errorf("status %d, later middleware ran %d, handler ran %d", rec.Code, after, handler)
	}
	if !strings.Contains(rec.Body.String(), `"endpoint":"GET /api/orders/:id"`) {
		t.Errorf("body %q", rec.Body)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := bulwarkgin.Middleware(nethttp.Config{}); err == nil || !strings.Contains(err.Error(), "Manager") {
		t.Errorf("no Manager: %v", err)
	}
	if _, err := bulwarkgin.GuardMiddleware(nil); err == nil {
		t.Error("nil Guard: no error")
	}
}

// The admin mount shown in the package doc: reached with its prefix
// stripped, and outside the guard.
func TestAdminMount(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, _ := bulwarkgin.Middleware(nethttp.Config{Manager: m})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "admin "+r.URL.Path) })
	g := gin.New()
	g.Any("/admin/*path", gin.WrapH(http.StripPrefix("/admin", h)))
	api := g.Group("/api", mw)
	api.GET("/users/:id", func(c *gin.Context) {})
	srv := httptest.NewServer(g)
	defer srv.Close()
	if got := do(t, http.MethodGet, srv.URL+"/admin/breakers", ""); got.status != http.StatusOK || got.body != "admin /breakers" {
		t.Errorf("admin: %d %q", got.status, got.body)
	}
	do(t, http.MethodGet, srv.URL+"/api/users/1", "")
	if got := names(m); !slices.Equal(got, []string{"GET /api/users/:id"}) {
		t.Errorf("breakers %q", got)
	}
}
