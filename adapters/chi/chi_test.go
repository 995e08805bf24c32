package bulwarkchi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	bulwarkchi "github.com/bulwark-go/bulwark/adapters/chi"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// fixture is a chi router behind a real server with a guarded healthy
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

func newFixture(t *testing.T, mount func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router))) *fixture {
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
	mw, err := bulwarkchi.Middleware(nethttp.Config{
		Manager:   f.m,
		Bulkheads: true,
		PerUser:   f.perUser,
		UserKey:   nethttp.UserFromHeader("X-User"),
	})
	if err != nil {
		t.Fatal(err)
	}
	routes := func(r chi.Router) {
		r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
			f.usersCalls.Add(1)
			_, _ = io.WriteString(w, "user "+chi.URLParam(r, "id"))
		})
		r.Get("/fail/{id}", func(w http.ResponseWriter, r *http.Request) {
			f.failCalls.Add(1)
			if f.failing.Load() {
				http.Error(w, "down", http.StatusInternalServerError)
			}
		})
		r.Get("/slow/{id}", func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("hold") != "" {
				f.entered <- struct{}{}
				<-f.release
			}
		})
		r.Get("/panic/{id}", func(http.ResponseWriter, *http.Request) { panic("handler bug") })
	}
	r := chi.NewRouter()
	r.Use(middleware.Recoverer) // outside the guard: turns the panic into a 500
	if mount == nil {
		r.Use(mw)
		routes(r)
	} else {
		mount(r, mw, routes)
	}
	f.srv = httptest.NewServer(r)
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
	return do(f.t, f.srv.URL+path, user)
}

func do(t *testing.T, url, user string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
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

func (f *fixture) state(endpoint string) core.State {
	f.t.Helper()
	b, ok := f.m.Lookup(endpoint)
	if !ok {
		f.t.Fatalf("no breaker for %q; have %v", endpoint, names(f.m))
	}
	return b.State()
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
	if got := r.header.Get("Retry-After"); got != itoa(retryAfter) {
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

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestFailingRouteOpensItsBreakerOnly(t *testing.T) {
	f := newFixture(t, nil)
	for i := range 3 {
		if r := f.get("/fail/"+itoa(i), ""); r.status != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d", i, r.status)
		}
		if r := f.get("/users/"+itoa(i), ""); r.status != http.StatusOK {
			t.Fatalf("users %d: status %d", i, r.status)
		}
	}
	if s := f.state("GET /fail/{id}"); s != core.Open {
		t.Fatalf("failing route %v, want Open", s)
	}
	if s := f.state("GET /users/{id}"); s != core.Closed {
		t.Fatalf("healthy route %v, want Closed", s)
	}

	checkRejection(t, f.get("/fail/9", ""), http.StatusServiceUnavailable, nethttp.ReasonCircuitOpen, "GET /fail/{id}", 10)
	f.clock.Advance(3500 * time.Millisecond) // 6.5s to half-open: rounded up
	checkRejection(t, f.get("/fail/9", ""), http.StatusServiceUnavailable, nethttp.ReasonCircuitOpen, "GET /fail/{id}", 7)
	if n := f.failCalls.Load(); n != 3 {
		t.Errorf("failing handler called %d times, want 3: an open breaker must not call it", n)
	}
	if r := f.get("/users/9", ""); r.status != http.StatusOK || r.body != "user 9" {
		t.Errorf("healthy route: %d %q", r.status, r.body)
	}
}

func TestRecoveryThroughHalfOpen(t *testing.T) {
	f := newFixture(t, nil)
	for range 3 {
		f.get("/fail/1", "")
	}
	if s := f.state("GET /fail/{id}"); s != core.Open {
		t.Fatalf("%v, want Open", s)
	}
	f.failing.Store(false) // the dependency is back
	f.clock.Advance(10*time.Second + time.Millisecond)
	for i := range 2 { // SuccessThreshold defaults to 2
		if r := f.get("/fail/1", ""); r.status != http.StatusOK {
			t.Fatalf("probe %d: status %d", i, r.status)
		}
	}
	if s := f.state("GET /fail/{id}"); s != core.Closed {
		t.Fatalf("after successful probes %v, want Closed", s)
	}
	if n := f.failCalls.Load(); n != 5 {
		t.Errorf("handler called %d times, want 5", n)
	}
}

func TestPerUserLimit(t *testing.T) {
	f := newFixture(t, nil)
	held := make(chan response)
	go func() { held <- do(t, f.srv.URL+"/slow/1?hold=1", "alice") }()
	<-f.entered

	checkRejection(t, f.get("/slow/2", "alice"), http.StatusTooManyRequests, nethttp.ReasonUserLimit, "GET /slow/{id}", 1)
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
	if s := f.state("GET /slow/{id}"); s != core.Closed {
		t.Errorf("a user's 429 must not count against the breaker: %v", s)
	}
}

func TestRoutePatternIsTheEndpoint(t *testing.T) {
	f := newFixture(t, nil)
	for _, p := range []string{"/users/1", "/users/2", "/users/abc"} {
		if r := f.get(p, ""); r.status != http.StatusOK {
			t.Fatalf("%s: status %d", p, r.status)
		}
	}
	if r := f.get("/no/such/route", ""); r.status != http.StatusNotFound {
		t.Fatalf("unmatched: status %d", r.status)
	}
	req, _ := http.NewRequest(http.MethodDelete, f.srv.URL+"/users/1", nil)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("wrong method: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	if got := names(f.m); !slices.Equal(got, []string{"GET /users/{id}"}) {
		t.Errorf("breakers %q, want only GET /users/{id}", got)
	}
}

func TestPanicIsAFailureAndReleasesPermits(t *testing.T) {
	f := newFixture(t, nil)
	if r := f.get("/panic/1", "alice"); r.status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500 from the recoverer", r.status)
	}
	b, ok := f.m.Lookup("GET /panic/{id}")
	if !ok {
		t.Fatal("no breaker for the panicking route")
	}
	if s := b.Snapshot(); s.FailedRequests != 1 || s.ConsecutiveFailures != 1 {
		t.Errorf("failed %d, consecutive %d; want 1, 1", s.FailedRequests, s.ConsecutiveFailures)
	}
	bh, ok := f.m.LookupBulkhead("GET /panic/{id}")
	if !ok {
		t.Fatal("no bulkhead for the panicking route")
	}
	if st := bh.Stats(); st.Active != 0 || st.Admitted != 1 {
		t.Errorf("bulkhead active %d admitted %d, want 0, 1", st.Active, st.Admitted)
	}
	if st := f.perUser.Stats(); st.All.Active != 0 {
		t.Errorf("per-user active %d, want 0", st.All.Active)
	}
	// The user can go on: her one slot came back.
	if r := f.get("/users/1", "alice"); r.status != http.StatusOK {
		t.Errorf("next request: status %d", r.status)
	}
}

// Wherever the middleware is mounted, a route has one key.
func TestMountPoints(t *testing.T) {
	const want = "GET /api/users/{id}"
	mounts := map[string]func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router)){
		"root Use": func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router)) {
			r.Use(mw)
			r.Route("/api", routes)
		},
		"sub-router Use": func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router)) {
			r.Route("/api", func(r chi.Router) { r.Use(mw); routes(r) })
		},
		"Group": func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router)) {
			r.Route("/api", func(r chi.Router) { r.Group(func(r chi.Router) { r.Use(mw); routes(r) }) })
		},
		"With": func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router)) {
			r.Route("/api", func(r chi.Router) { routes(r.With(mw)) })
		},
		"mounted sub-router": func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router)) {
			r.Use(mw)
			sub := chi.NewRouter()
			routes(sub)
			r.Mount("/api", sub)
		},
	}
	for name, mount := range mounts {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, mount)
			for _, p := range []string{"/api/users/1", "/api/users/2"} {
				if r := f.get(p, ""); r.status != http.StatusOK {
					t.Fatalf("%s: status %d", p, r.status)
				}
			}
			for range 3 {
				f.get("/api/fail/1", "")
			}
			f.get("/api/nothing/here", "")
			if got := names(f.m); !slices.Equal(got, []string{"GET /api/fail/{id}", want}) {
				t.Fatalf("breakers %q", got)
			}
			checkRejection(t, f.get("/api/fail/2", ""), http.StatusServiceUnavailable, nethttp.ReasonCircuitOpen, "GET /api/fail/{id}", 10)
		})
	}
}

// A mounted plain http.Handler is one endpoint: its mount pattern.
func TestMountedHandlerIsOneEndpoint(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, err := bulwarkchi.Middleware(nethttp.Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Use(mw)
	r.Mount("/static", http.StripPrefix("/static", http.NotFoundHandler()))
	r.Get("/files/*", func(http.ResponseWriter, *http.Request) {})
	r.Get("/", func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(r)
	defer srv.Close()
	for _, p := range []string{"/files/a/b", "/files/c", "/", "/static/x"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if got := names(m); !slices.Equal(got, []string{"GET /", "GET /files/*", "GET /static/*"}) {
		t.Errorf("breakers %q", got)
	}
}

func TestEndpoint(t *testing.T) {
	var got []string
	r := chi.NewRouter()
	r.Use(middleware.GetHead) // routes HEAD to GET routes
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = append(got, bulwarkchi.Endpoint(r))
			next.ServeHTTP(w, r)
		})
	})
	r.Get("/users/{id}/", func(http.ResponseWriter, *http.Request) {})
	r.With(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = append(got, "with "+bulwarkchi.Endpoint(r))
			next.ServeHTTP(w, r)
		})
	}).Get("/items/{id}/", func(http.ResponseWriter, *http.Request) {})
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/users/1/", nil),
		httptest.NewRequest(http.MethodHead, "/users/1/", nil),
		httptest.NewRequest(http.MethodGet, "/items/1/", nil),
		httptest.NewRequest(http.MethodPost, "/users/1/", nil),
	} {
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
	want := []string{"GET /users/{id}", "GET /users/{id}", "GET /items/{id}", "with GET /items/{id}", ""}
	if !slices.Equal(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
	if k := bulwarkchi.Endpoint(httptest.NewRequest(http.MethodGet, "/x", nil)); k != "" {
		t.Errorf("outside chi: %q, want empty", k)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := bulwarkchi.Middleware(nethttp.Config{}); err == nil || !strings.Contains(err.Error(), "Manager") {
		t.Errorf("no Manager: %v", err)
	}
	if _, err := bulwarkchi.GuardMiddleware(nil); err == nil {
		t.Error("nil Guard: no error")
	}
}

// The admin mount shown in the package doc: reached with its prefix
// stripped, and outside the guard.
func TestAdminMount(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, _ := bulwarkchi.Middleware(nethttp.Config{Manager: m})
	// chi's Mount passes the full path; admin.Config.Prefix strips it, as
	// StripPrefix does for this stand-in.
	h := http.StripPrefix("/admin", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "admin "+r.URL.Path)
	}))
	r := chi.NewRouter()
	r.Mount("/admin", h)
	r.Group(func(r chi.Router) {
		r.Use(mw)
		r.Get("/users/{id}", func(http.ResponseWriter, *http.Request) {})
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	if got := do(t, srv.URL+"/admin/breakers", ""); got.status != http.StatusOK || got.body != "admin /breakers" {
		t.Errorf("admin: %d %q", got.status, got.body)
	}
	do(t, srv.URL+"/users/1", "")
	if got := names(m); !slices.Equal(got, []string{"GET /users/{id}"}) {
		t.Errorf("breakers %q", got)
	}
}
