package adaptertest

import (
	"net/http"
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
	if s := f.Breaker(a.Endpoints.Fail).State(); s != core.Open {
		t.Fatalf("failing route %v, want Open", s)
	}
	if s := f.Breaker(a.Endpoints.Users).State(); s != core.Closed {
		t.Fatalf("healthy route %v, want Closed", s)
	}

	CheckRejection(t, f.Get("/fail/9", ""), http.StatusServiceUnavailable, nethttp.ReasonCircuitOpen, a.Endpoints.Fail, 10)
	f.Clock.Advance(3500 * time.Millisecond) // 6.5s to half-open: rounded up
	CheckRejection(t, f.Get("/fail/9", ""), http.StatusServiceUnavailable, nethttp.ReasonCircuitOpen, a.Endpoints.Fail, 7)
	if n := f.FailCalls.Load(); n != 3 {
		t.Errorf("failing handler called %d times, want 3: an open breaker must not call it", n)
	}
	if r := f.Get("/users/9", ""); r.Status != http.StatusOK || r.Body != "user 9" {
		t.Errorf("healthy route: %d %q", r.Status, r.Body)
	}
}

func recoveryThroughHalfOpen(t *testing.T, a Adapter) {
	f := NewFixture(t, a)
	for range 3 {
		f.Get("/fail/1", "")
	}
	if s := f.Breaker(a.Endpoints.Fail).State(); s != core.Open {
		t.Fatalf("%v, want Open", s)
	}
	f.Failing.Store(false) // the dependency is back
	f.Clock.Advance(10*time.Second + time.Millisecond)
	for i := range 2 { // SuccessThreshold defaults to 2
		if r := f.Get("/fail/1", ""); r.Status != http.StatusOK {
			t.Fatalf("probe %d: status %d", i, r.Status)
		}
	}
	if s := f.Breaker(a.Endpoints.Fail).State(); s != core.Closed {
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

	CheckRejection(t, f.Get("/slow/2", "alice"), http.StatusTooManyRequests, nethttp.ReasonUserLimit, a.Endpoints.Slow, 1)
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
	if s := f.Breaker(a.Endpoints.Slow).State(); s != core.Closed {
		t.Errorf("a user's 429 must not count against the breaker: %v", s)
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
	bh, ok := f.M.LookupBulkhead(a.Endpoints.Panic)
	if !ok {
		t.Fatal("no bulkhead for the panicking route")
	}
	if st := bh.Stats(); st.Active != 0 || st.Admitted != 1 {
		t.Errorf("bulkhead active %d admitted %d, want 0, 1", st.Active, st.Admitted)
	}
	if st := f.PerUser.Stats(); st.All.Active != 0 {
		t.Errorf("per-user active %d, want 0", st.All.Active)
	}
	// The user can go on: her one slot came back.
	if r := f.Get("/users/1", "alice"); r.Status != http.StatusOK {
		t.Errorf("next request: status %d", r.Status)
	}
}

// configErrors: a bad configuration is an error naming what is missing,
// never a panic.
func configErrors(t *testing.T, a Adapter) {
	if _, err := a.Router(nethttp.Config{}, Handlers{}); err == nil || !strings.Contains(err.Error(), "Manager") {
		t.Errorf("no Manager: %v", err)
	}
	if err := a.FromGuard(nil); err == nil {
		t.Error("nil Guard: no error")
	}
}
