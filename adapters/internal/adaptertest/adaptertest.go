// Package adaptertest is the test suite the router adapters (bulwarkchi,
// bulwarkecho, bulwarkgin) share: one fixture, the tests every adapter
// must pass and the body of their benchmark.
//
// An adapter's tests describe the adapter in an Adapter (how to build its
// router around its middleware, and the endpoint keys its router gives the
// routes) and hand it to Run and Bench:
//
//	func TestSuite(t *testing.T) { adaptertest.Run(t, adapter) }
//
//	func BenchmarkChiMiddleware(b *testing.B) { adaptertest.Bench(b, adapter) }
//
// Tests of what only one router does stay with that adapter; they can use
// the fixture and the helpers here.
package adaptertest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// Adapter is what an adapter's tests supply: what differs between routers.
type Adapter struct {
	// Router builds the router under test around the adapter's middleware
	// made from cfg. Outermost is a recoverer that answers a panic with
	// 500, inside it the middleware, and behind that four GET routes, each
	// with a parameter id, written in the router's own syntax and handlers:
	//
	//	/users/{id}  answers 200 with the body h.User(id)
	//	/fail/{id}   answers 500 the router's usual way while h.Fail() is
	//	             true, 200 otherwise
	//	/slow/{id}   calls h.Slow with whether the query has a "hold"
	//	             parameter, then answers 200
	//	/panic/{id}  panics
	//
	// Paths the router does not know answer 404, and other methods on a
	// route 405.
	Router func(cfg nethttp.Config, h Handlers) (http.Handler, error)

	// Endpoints are the endpoint keys the router gives the four routes.
	Endpoints Endpoints

	// Bench builds the routers the benchmark compares, each serving a
	// route /users/{id} (in the router's syntax) that answers 204 No
	// Content: first "bare", without the middleware, then the ways of
	// mounting the middleware made from cfg worth measuring.
	Bench func(cfg nethttp.Config) ([]BenchRouter, error)

	// MountAllocs is how many allocations the router itself makes per
	// request for a middleware mounted the way Bench mounts it, whatever
	// the middleware does (echo wraps the handler in each e.Use middleware
	// anew on every request). The allocation test allows that much more
	// than "bare"; the adapter's own tests should check the figure with a
	// middleware that does nothing.
	MountAllocs float64
}

// Endpoints are the endpoint keys of the fixture's routes, such as
// "GET /users/{id}" or "GET /users/:id".
type Endpoints struct {
	Users, Fail, Slow, Panic string
}

// BenchRouter is one router the benchmark serves, named for its sub-benchmark.
type BenchRouter struct {
	Name    string
	Handler http.Handler
}

// Handlers is what the fixture's routes do; the adapter's handlers call it.
type Handlers struct{ f *Fixture }

// User counts a call of /users/{id} and returns the body to answer it with.
func (h Handlers) User(id string) string {
	h.f.UsersCalls.Add(1)
	return "user " + id
}

// Fail counts a call of /fail/{id} and reports whether it is to answer 500.
func (h Handlers) Fail() bool {
	h.f.FailCalls.Add(1)
	return h.f.Failing.Load()
}

// Slow holds a call of /slow/{id} when hold is set: it tells the test the
// request is in and waits until the test lets it go.
func (h Handlers) Slow(hold bool) {
	if hold {
		h.f.entered <- struct{}{}
		<-h.f.release
	}
}

// Fixture is an adapter's router behind a real server, guarded by a
// Manager on a FakeClock:
//
//   - every endpoint has a breaker that opens after 3 failures for 10s and
//     an SLO (its burn rule needs 20 calls, more than any test makes);
//   - the Users endpoint has a bulkhead of 2 slots without a queue, whose
//     refusals say to come back in 2s, and the Panic endpoint the default
//     bulkhead; the Fail and Slow endpoints have none;
//   - a per-user bulkhead of one request per user, the user taken from the
//     X-User header.
type Fixture struct {
	URL     string // the server's base URL
	M       *core.Manager
	Clock   *core.FakeClock
	PerUser *core.PerUserBulkhead // M's

	UsersCalls, FailCalls atomic.Int64
	Failing               atomic.Bool // /fail answers 500 while set; set at first

	t                testing.TB
	entered, release chan struct{}
	releaseOnce      sync.Once
}

// managerConfig is the configuration of a's fixture's Manager (without its
// Clock).
func managerConfig(a Adapter) core.ManagerConfig {
	return core.ManagerConfig{
		Defaults: core.EndpointConfig{
			Breaker: &core.BreakerConfig{FailureThreshold: 3, Timeout: 10 * time.Second},
			SLO:     &core.SLOConfig{},
		},
		Endpoints: map[string]core.EndpointConfig{
			a.Endpoints.Users: {Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 2, MaxQueueSize: core.NoQueue, RetryAfter: 2 * time.Second}},
			a.Endpoints.Panic: {Bulkhead: &core.BulkheadConfig{}},
		},
		PerUser: &core.PerUserConfig{
			Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue},
		},
	}
}

// NewFixture builds a's router with its middleware and serves it until the
// test ends.
func NewFixture(t testing.TB, a Adapter) *Fixture {
	t.Helper()
	f := &Fixture{t: t, Clock: core.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		entered: make(chan struct{}), release: make(chan struct{})}
	f.Failing.Store(true)
	mcfg := managerConfig(a)
	mcfg.Clock = f.Clock
	var err error
	if f.M, err = core.NewManager(mcfg); err != nil {
		t.Fatal(err)
	}
	f.PerUser = f.M.PerUser()
	h, err := a.Router(nethttp.Config{
		Manager: f.M,
		UserKey: nethttp.UserFromHeader("X-User"),
	}, Handlers{f})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(f.releaseHeld) // runs first: Close waits for held requests
	f.URL = srv.URL
	return f
}

// releaseHeld lets every held /slow request go on; it may be called again.
func (f *Fixture) releaseHeld() { f.releaseOnce.Do(func() { close(f.release) }) }

// Get requests path from the fixture's server as user ("": none).
func (f *Fixture) Get(path, user string) Response {
	f.t.Helper()
	return Do(f.t, http.MethodGet, f.URL+path, user)
}

// Endpoint returns endpoint, which must exist; the test fails when it does
// not.
func (f *Fixture) Endpoint(endpoint string) *core.Endpoint {
	f.t.Helper()
	e, ok := f.M.Lookup(endpoint)
	if !ok {
		f.t.Fatalf("no endpoint %q; have %v", endpoint, Names(f.M))
	}
	return e
}

// Breaker returns the breaker of endpoint; the test fails when there is none.
func (f *Fixture) Breaker(endpoint string) *core.Breaker {
	f.t.Helper()
	return f.Endpoint(endpoint).Breaker()
}

// Response is what a request got back.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// Do sends a request to url as user ("": none, else in X-User). A request
// that fails to go through fails the test and returns the zero Response.
func Do(t testing.TB, method, url, user string) Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Error(err)
		return Response{}
	}
	if user != "" {
		req.Header.Set("X-User", user)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return Response{}
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return Response{res.StatusCode, res.Header, string(body)}
}

// SkipAllocs skips a test that counts allocations when the race detector
// is on: it makes sync.Pool drop items at random, so pooled values are
// allocated again now and then.
func SkipAllocs(t testing.TB) {
	t.Helper()
	if raceEnabled {
		t.Skip("allocation counts are not exact under the race detector")
	}
}

// Names returns the names of m's endpoints, sorted.
func Names(m *core.Manager) []string {
	var s []string
	for _, e := range m.Endpoints() {
		s = append(s, e.Name())
	}
	slices.Sort(s)
	return s
}

// CheckRejection checks a refusal: status, Retry-After and the JSON body.
func CheckRejection(t testing.TB, r Response, status int, reason, endpoint string, retryAfter int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (body %q)", r.Status, status, r.Body)
	}
	if got := r.Header.Get("Retry-After"); got != strconv.Itoa(retryAfter) {
		t.Errorf("Retry-After %q, want %d", got, retryAfter)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var body struct {
		Error             string `json:"error"`
		Endpoint          string `json:"endpoint"`
		RetryAfterSeconds int    `json:"retry_after_seconds"`
	}
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
		t.Fatalf("body %q: %v", r.Body, err)
	}
	if body.Error != reason || body.Endpoint != endpoint || body.RetryAfterSeconds != retryAfter {
		t.Errorf("body %+v, want %s %s %d", body, reason, endpoint, retryAfter)
	}
}
