package nethttp

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// nowCounter is a FakeClock that counts precise wall-clock reads (Now): on
// the system clock each one is a time.Now.
type nowCounter struct {
	*core.FakeClock
	now atomic.Int64
}

func (c *nowCounter) Now() time.Time { c.now.Add(1); return c.FakeClock.Now() }

type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(int)             {}

// A request refused by any policy (every request during an outage or an
// overload) reads no precise clock and allocates nothing.
func TestRejectedRequestReadsNoPreciseClockAndAllocatesNothing(t *testing.T) {
	one := core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}
	for _, c := range []struct {
		name   string
		status int
		refuse func(t *testing.T, m *core.Manager, e *core.Endpoint) (undo func())
	}{
		{"open breaker", 503, func(t *testing.T, _ *core.Manager, e *core.Endpoint) func() {
			if !e.Breaker().Trip("test") {
				t.Fatal("the breaker did not open")
			}
			return func() {}
		}},
		{"full bulkhead", 503, func(t *testing.T, _ *core.Manager, e *core.Endpoint) func() {
			g, err := e.Bulkhead().TryAcquire()
			if err != nil {
				t.Fatal(err)
			}
			return g.Release
		}},
		{"user over the limit", 429, func(t *testing.T, m *core.Manager, _ *core.Endpoint) func() {
			g, err := m.PerUser().TryAcquire("alice")
			if err != nil {
				t.Fatal(err)
			}
			return g.Release
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk := &nowCounter{FakeClock: core.NewFakeClock(t0)}
			m, err := core.NewManager(core.ManagerConfig{
				Defaults: core.EndpointConfig{Bulkhead: &one, SLO: &core.SLOConfig{}},
				PerUser:  &core.PerUserConfig{Bulkhead: one},
				Clock:    clk,
			})
			if err != nil {
				t.Fatal(err)
			}
			mw, err := Middleware(Config{Manager: m, EndpointKey: func(*http.Request) string { return "api" }, UserKey: UserFromHeader("X-User")})
			if err != nil {
				t.Fatal(err)
			}
			defer c.refuse(t, m, endpoint(t, m, "api"))()
			req, _ := http.NewRequest("GET", "/x", nil)
			req.Header.Set("X-User", "alice")
			var code int
			w := &statusRecorder{nullWriter: nullWriter{h: http.Header{}}, code: &code}
			h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("handler ran") }))
			before := clk.now.Load()
			h.ServeHTTP(w, req)
			if code != c.status {
				t.Fatalf("status %d, want %d", code, c.status)
			}
			if n := clk.now.Load() - before; n != 0 {
				t.Errorf("a rejected request read the precise clock %d times", n)
			}
			if raceEnabled {
				t.Skip("allocation counts are not exact under the race detector: sync.Pool drops items at random")
			}
			allocs := testing.AllocsPerRun(100, func() {
				clear(w.h)
				h.ServeHTTP(w, req)
			})
			if allocs > 0 {
				t.Errorf("a rejected request allocates %v times", allocs)
			}
		})
	}
}

// statusRecorder is a nullWriter that remembers the status.
type statusRecorder struct {
	nullWriter
	code *int
}

func (w *statusRecorder) WriteHeader(code int) { *w.code = code }

// A request that goes through every policy (per-user bulkhead, endpoint
// bulkhead, breaker, SLO, duration) allocates nothing beyond what its
// handler does, with the default, cached endpoint key.
func TestAdmittedRequestAllocatesNothingBeyondTheHandler(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not exact under the race detector: sync.Pool drops items at random")
	}
	m, err := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Bulkhead: &core.BulkheadConfig{}, SLO: &core.SLOConfig{}},
		PerUser:  &core.PerUserConfig{},
		Clock:    core.NewFakeClock(t0),
	})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := Middleware(Config{Manager: m, UserKey: UserFromHeader("X-User")})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "/users/42", nil)
	req.Pattern = "GET /users/{id}"
	req.Header.Set("X-User", "alice")
	w := &nullWriter{h: http.Header{}}
	bare := testing.AllocsPerRun(200, func() { okHandler.ServeHTTP(w, req) })
	guarded := mw(okHandler)
	guarded.ServeHTTP(w, req) // the endpoint, the user and the cached key are made once
	got := testing.AllocsPerRun(200, func() { guarded.ServeHTTP(w, req) })
	if got > bare {
		t.Errorf("a guarded request allocates %v times, the bare handler %v", got, bare)
	}
	e, _ := m.Lookup("GET /users/{id}")
	if s := e.Breaker().Snapshot(); s.SuccessfulRequests < 200 {
		t.Fatalf("the requests did not go through the breaker: %+v", s)
	}
}
