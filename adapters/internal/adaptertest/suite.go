package adaptertest

import (
	"errors"
	"github.com/bulwark-go/bulwark/events"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// Run runs the tests every adapter must pass, each as a subtest on a fresh
// Fixture of a.
func Run(t *testing.T, a Adapter) {
	for _, c := range []struct {
		name string
		test func(*testing.T, Adapter)
	}{
		{"FailingRouteOpensItsBreakerOnly", failingRouteOpensItsBreakerOnly},
		{"RecoveryThroughHalfOpen", recoveryThroughHalfOpen},
		{"PerUserLimit", perUserLimit},
		{"RoutePatternIsTheEndpoint", routePatternIsTheEndpoint},
		{"PanicIsAFailureAndReleasesPermits", panicIsAFailureAndReleasesPermits},
		{"BulkheadOnlyWhereConfigured", bulkheadOnlyWhereConfigured},
		{"EndpointBulkheadFullIs503", endpointBulkheadFullIs503},
		{"InvalidUserIs400", invalidUserIs400},
		{"RequestsAllocateNoMoreThanBare", requestsAllocateNoMoreThanBare},
		{"ConfigErrors", configErrors},
	} {
		t.Run(c.name, func(t *testing.T) { c.test(t, a) })
	}
}

// A failing route opens its own breaker, and only its own; the open route
// answers 503 with Retry-After and a JSON body without calling its handler.
func failingRouteOpensItsBreakerOnly(t *testing.T, a Adapter) {
	f := NewFixture(t, a)
	for i := range 3 {
		if r := f.Get("/fail/"+strconv.Itoa(i), ""); r.Status != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d", i, r.Status)
		}
		if r := f.Get("/users/"+strconv.Itoa(i), ""); r.Status != http.StatusOK {
			t.Fatalf("users %d: status %d", i, r.Status)
		}
	}
	if s := f.Breaker(a.Endpoints.Fail).State(); s != events.Open {
		t.Fatalf("failing route %v, want Open", s)
	}
	if s := f.Breaker(a.Endpoints.Users).State(); s != events.Closed {
		t.Fatalf("healthy route %v, want Closed", s)
	}

	CheckRejection(t, f.Get("/fail/9", ""), http.StatusServiceUnavailable, "circuit_open", a.Endpoints.Fail, 10)
	f.Clock.Advance(3500 * time.Millisecond) // 6.5s to half-open: rounded up
	CheckRejection(t, f.Get("/fail/9", ""), http.StatusServiceUnavailable, "circuit_open", a.Endpoints.Fail, 7)
	if n := f.FailCalls.Load(); n != 3 {
		t.Errorf("failing handler called %d times, want 3: an open breaker must not call it", n)
	}
	if r := f.Get("/users/9", ""); r.Status != http.StatusOK || r.Body != "user 9" {
		t.Errorf("healthy route: %d %q", r.Status, r.Body)
	}
	// The SLOs heard of the requests that ran, not of the rejected ones.
	if st := f.Endpoint(a.Endpoints.Fail).SLO().Status(); st.Total != 3 || st.Failed != 3 {
		t.Errorf("failing route's SLO: %d of %d failed, want 3 of 3", st.Failed, st.Total)
	}
	if st := f.Endpoint(a.Endpoints.Users).SLO().Status(); st.Total != 4 || st.Failed != 0 {
		t.Errorf("healthy route's SLO: %d of %d failed, want 0 of 4", st.Failed, st.Total)
	}
}

func recoveryThroughHalfOpen(t *testing.T, a Adapter) {
	f := NewFixture(t, a)
	for range 3 {
		f.Get("/fail/1", "")
	}
	if s := f.Breaker(a.Endpoints.Fail).State(); s != events.Open {
		t.Fatalf("%v, want Open", s)
	}
	f.Failing.Store(false) // the dependency is back
	f.Clock.Advance(10*time.Second + time.Millisecond)
	for i := range 2 { // SuccessThreshold defaults to 2
		if r := f.Get("/fail/1", ""); r.Status != http.StatusOK {
			t.Fatalf("probe %d: status %d", i, r.Status)
		}
	}
	if s := f.Breaker(a.Endpoints.Fail).State(); s != events.Closed {
		t.Fatalf("after successful probes %v, want Closed", s)
	}
	if n := f.FailCalls.Load(); n != 5 {
		t.Errorf("handler called %d times, want 5", n)
	}
}

// One user at her limit gets 429 while another user passes.
func perUserLimit(t *testing.T, a Adapter) {
	f := NewFixture(t, a)
	held := make(chan Response, 1)
	go func() { held <- Do(t, http.MethodGet, f.URL+"/slow/1?hold=1", "alice") }()
	<-f.entered

	CheckRejection(t, f.Get("/slow/2", "alice"), http.StatusTooManyRequests, "user_limit", a.Endpoints.Slow, 1)
	if r := f.Get("/slow/2", "bob"); r.Status != http.StatusOK {
		t.Errorf("another user: status %d, want 200", r.Status)
	}
	f.releaseHeld()
	if r := <-held; r.Status != http.StatusOK {
		t.Errorf("held request: status %d", r.Status)
	}
	if st := f.PerUser.Stats(); st.All.Active != 0 {
		t.Errorf("per-user slots held after the requests: %d", st.All.Active)
	}
	if r := f.Get("/slow/3", "alice"); r.Status != http.StatusOK {
		t.Errorf("alice after her request ended: status %d", r.Status)
	}
	if s := f.Breaker(a.Endpoints.Slow).Snapshot(); s.State != events.Closed || s.TotalRequests != 3 || s.RejectedRequests != 0 {
		t.Errorf("a user's 429 must not reach the breaker: %v, %d requests, %d rejected", s.State, s.TotalRequests, s.RejectedRequests)
	}
	if st := f.Endpoint(a.Endpoints.Slow).SLO().Status(); st.Total != 3 {
		t.Errorf("the SLO saw %d requests, want the 3 that ran", st.Total)
	}
}

// Paths that match one route pattern share one endpoint; requests that
// match no route (no path, or not the method) get no breaker.
func routePatternIsTheEndpoint(t *testing.T, a Adapter) {
	f := NewFixture(t, a)
	for _, p := range []string{"/users/1", "/users/2", "/users/abc"} {
		if r := f.Get(p, ""); r.Status != http.StatusOK {
			t.Fatalf("%s: status %d", p, r.Status)
		}
	}
	if r := f.Get("/no/such/route", ""); r.Status != http.StatusNotFound {
		t.Fatalf("unmatched: status %d", r.Status)
	}
	if r := Do(t, http.MethodDelete, f.URL+"/users/1", ""); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("wrong method: status %d", r.Status)
	}
	if r := Do(t, "BREW", f.URL+"/users/1", ""); r.Status != http.StatusMethodNotAllowed {
		t.Fatalf("made-up method: status %d", r.Status)
	}
	if got := Names(f.M); !slices.Equal(got, []string{a.Endpoints.Users}) {
		t.Errorf("breakers %q, want only %s", got, a.Endpoints.Users)
	}
}

func panicIsAFailureAndReleasesPermits(t *testing.T, a Adapter) {
	f := NewFixture(t, a)
	if r := f.Get("/panic/1", "alice"); r.Status != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500 from the recoverer", r.Status)
	}
	if s := f.Breaker(a.Endpoints.Panic).Snapshot(); s.FailedRequests != 1 || s.ConsecutiveFailures != 1 {
		t.Errorf("failed %d, consecutive %d; want 1, 1", s.FailedRequests, s.ConsecutiveFailures)
	}
	bh := f.Endpoint(a.Endpoints.Panic).Bulkhead()
	if bh == nil {
		t.Fatal("no bulkhead for the panicking route")
	}
	if st := bh.Stats(); st.Active != 0 || st.Admitted != 1 {
		t.Errorf("bulkhead active %d admitted %d, want 0, 1", st.Active, st.Admitted)
	}
	if st := f.PerUser.Stats(); st.All.Active != 0 {
		t.Errorf("per-user active %d, want 0", st.All.Active)
	}
	if st := f.Endpoint(a.Endpoints.Panic).SLO().Status(); st.Total != 1 || st.Failed != 1 {
		t.Errorf("SLO: %d of %d failed, want the panic as 1 of 1", st.Failed, st.Total)
	}
	// The user can go on: her one slot came back.
	if r := f.Get("/users/1", "alice"); r.Status != http.StatusOK {
		t.Errorf("next request: status %d", r.Status)
	}
}

// An endpoint gets a bulkhead only when its configuration gives it one:
// the fixture's Defaults have none, its Endpoints give Users and Panic one.
func bulkheadOnlyWhereConfigured(t *testing.T, a Adapter) {
	f := NewFixture(t, a)
	f.Failing.Store(false)
	for _, p := range []string{"/users/1", "/fail/1", "/slow/1", "/panic/1"} {
		f.Get(p, "")
	}
	for _, ep := range []string{a.Endpoints.Fail, a.Endpoints.Slow} {
		if bh := f.Endpoint(ep).Bulkhead(); bh != nil {
			t.Errorf("%s has a bulkhead (%+v); its configuration gives none", ep, bh.Stats())
		}
	}
	for ep, slots := range map[string]int{a.Endpoints.Users: 2, a.Endpoints.Panic: 100} {
		bh := f.Endpoint(ep).Bulkhead()
		if bh == nil {
			t.Errorf("%s has no bulkhead", ep)
			continue
		}
		if st := bh.Stats(); st.MaxConcurrent != slots || st.Admitted != 1 || st.Active != 0 {
			t.Errorf("%s bulkhead: %d slots, %d admitted, %d active; want %d, 1, 0", ep, st.MaxConcurrent, st.Admitted, st.Active, slots)
		}
	}
}

// A full endpoint bulkhead answers 503 with its Retry-After, before the
// breaker and the handler, and gives the user's slot back.
func endpointBulkheadFullIs503(t *testing.T, a Adapter) {
	f := NewFixture(t, a)
	if r := f.Get("/users/1", "alice"); r.Status != http.StatusOK {
		t.Fatalf("status %d", r.Status)
	}
	bh := f.Endpoint(a.Endpoints.Users).Bulkhead()
	for range 2 {
		g, err := bh.TryAcquire()
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
	}
	CheckRejection(t, f.Get("/users/2", "alice"), http.StatusServiceUnavailable, "bulkhead_full", a.Endpoints.Users, 2)
	CheckRejection(t, f.Get("/users/2", "alice"), http.StatusServiceUnavailable, "bulkhead_full", a.Endpoints.Users, 2)
	if n := f.UsersCalls.Load(); n != 1 {
		t.Errorf("handler called %d times, want 1", n)
	}
	if s := f.Breaker(a.Endpoints.Users).Snapshot(); s.TotalRequests != 1 || s.RejectedRequests != 0 {
		t.Errorf("breaker saw %d requests and rejected %d; want 1, 0", s.TotalRequests, s.RejectedRequests)
	}
	if st := f.Endpoint(a.Endpoints.Users).SLO().Status(); st.Total != 1 {
		t.Errorf("SLO saw %d requests, want 1", st.Total)
	}
	if st := f.PerUser.Stats(); st.All.Active != 0 {
		t.Errorf("per-user active %d after the refusals, want 0", st.All.Active)
	}
	if st := bh.Stats(); st.Rejected != 2 {
		t.Errorf("bulkhead rejected %d, want 2", st.Rejected)
	}
}

// A user key the per-user bulkhead cannot take is the client's mistake:
// 400, and the breaker never hears of it.
func invalidUserIs400(t *testing.T, a Adapter) {
	f := NewFixture(t, a)
	CheckRejection(t, f.Get("/users/1", strings.Repeat("u", 300)), http.StatusBadRequest, "invalid_user", a.Endpoints.Users, 1)
	if n := f.UsersCalls.Load(); n != 0 {
		t.Errorf("handler called %d times", n)
	}
	if s := f.Breaker(a.Endpoints.Users).Snapshot(); s.TotalRequests != 0 || s.RejectedRequests != 0 {
		t.Errorf("breaker %+v", s)
	}
}

// nullWriter is a ResponseWriter that keeps nothing but its header map, so
// that serving through it allocates only what the router does.
type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(int)             {}

// A request through the full stack (per-user bulkhead, endpoint bulkhead,
// breaker, SLO) allocates no more than the same router without the
// middleware (give or take a.MountAllocs), and neither does one the breaker
// refuses.
func requestsAllocateNoMoreThanBare(t *testing.T, a Adapter) {
	SkipAllocs(t)
	m, err := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Bulkhead: &core.BulkheadConfig{}, SLO: &core.SLOConfig{}},
		PerUser:  &core.PerUserConfig{},
		Clock:    core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
	})
	if err != nil {
		t.Fatal(err)
	}
	routers, err := a.Bench(nethttp.Config{Manager: m, UserKey: nethttp.UserFromHeader("X-User")})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/users/42", nil)
	req.Header.Set("X-User", "alice")
	w := &nullWriter{h: http.Header{}}
	allocs := func(h http.Handler) float64 {
		serve := func() {
			clear(w.h)
			h.ServeHTTP(w, req)
		}
		serve() // the endpoint, the user and the cached key are made once
		return testing.AllocsPerRun(200, serve)
	}
	bare := allocs(routers[0].Handler)
	for _, r := range routers[1:] {
		if got := allocs(r.Handler); got > bare+a.MountAllocs {
			t.Errorf("%s: a request allocates %v times, %v without the middleware (%v for mounting one)", r.Name, got, bare, a.MountAllocs)
		}
	}
	e, ok := m.Lookup(a.Endpoints.Users)
	if !ok || e.Breaker().Snapshot().SuccessfulRequests == 0 {
		t.Fatalf("the requests were not guarded: endpoints %q", Names(m))
	}
	e.Breaker().ForceOpen("test")
	for _, r := range routers[1:] {
		if got := allocs(r.Handler); got > bare+a.MountAllocs {
			t.Errorf("%s: a refused request allocates %v times, %v without the middleware (%v for mounting one)", r.Name, got, bare, a.MountAllocs)
		}
	}
	if s := e.Breaker().Snapshot(); s.RejectedRequests == 0 {
		t.Fatal("no request was refused")
	}
}

// configErrors: a bad configuration is a *core.ConfigError naming the
// field, never a panic.
func configErrors(t *testing.T, a Adapter) {
	withUsers, err := core.NewManager(core.ManagerConfig{PerUser: &core.PerUserConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		cfg   nethttp.Config
		field string
	}{
		{"no Manager", nethttp.Config{UserKey: nethttp.UserFromHeader("X-User")}, "nethttp.Config.Manager"},
		{"per-user bulkhead without UserKey", nethttp.Config{Manager: withUsers}, "nethttp.Config.UserKey"},
	} {
		_, err := a.Router(c.cfg, Handlers{})
		var ce *core.ConfigError
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%s: error %v, want a *core.ConfigError for %s", c.name, err, c.field)
		}
	}
	if _, err := a.Router(nethttp.Config{Manager: withUsers, UserKey: nethttp.UserFromHeader("X-User")}, Handlers{}); err != nil {
		t.Errorf("a valid config refused: %v", err)
	}
}
