package nethttp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })

func benchRequests(n int) []*http.Request {
	reqs := make([]*http.Request, n)
	for i := range reqs {
		r := httptest.NewRequest("GET", "/users/42", nil)
		r.Header.Set("X-User", "user-"+strconv.Itoa(i))
		r.Pattern = "GET /users/{id}"
		reqs[i] = r
	}
	return reqs
}

func serveBench(b *testing.B, h http.Handler) {
	reqs := benchRequests(64)
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1)
		for pb.Next() {
			i++
			h.ServeHTTP(httptest.NewRecorder(), reqs[i%uint64(len(reqs))])
		}
	})
}

// BenchmarkMiddlewareBare is the handler alone, for the overhead baseline.
func BenchmarkMiddlewareBare(b *testing.B) { serveBench(b, okHandler) }

// BenchmarkMiddlewareFullStack is the handler behind per-user bulkhead,
// endpoint bulkhead, breaker and SLO, with fault injection on and no
// experiment running.
func BenchmarkMiddlewareFullStack(b *testing.B) {
	m, err := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{
			Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 1000},
			SLO:      &core.SLOConfig{},
		},
		PerUser: &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 100}},
		Faults:  &core.FaultLimits{},
	})
	if err != nil {
		b.Fatal(err)
	}
	mw, err := Middleware(Config{Manager: m, UserKey: UserFromHeader("X-User")})
	if err != nil {
		b.Fatal(err)
	}
	serveBench(b, mw(okHandler))
}

// BenchmarkMiddlewareBreaker is the handler behind the breaker alone.
func BenchmarkMiddlewareBreaker(b *testing.B) {
	m, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	mw, err := Middleware(Config{Manager: m})
	if err != nil {
		b.Fatal(err)
	}
	serveBench(b, mw(okHandler))
}

// memTransport answers every request at once from memory.
type memTransport struct{}

func (memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

func roundTripBench(b *testing.B, rt http.RoundTripper) {
	req, _ := http.NewRequest("GET", "http://upstream.internal/v1/items", nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
		}
	})
}

// BenchmarkTransportBare is the in-memory transport alone.
func BenchmarkTransportBare(b *testing.B) { roundTripBench(b, memTransport{}) }

// BenchmarkTransport is breaker + retry (the endpoint's default policies)
// over the in-memory transport, with fault injection on and no experiment
// running.
func BenchmarkTransport(b *testing.B) {
	m, err := core.NewManager(core.ManagerConfig{Faults: &core.FaultLimits{}})
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTransport(TransportConfig{Manager: m, Base: memTransport{}})
	if err != nil {
		b.Fatal(err)
	}
	roundTripBench(b, tr)
}

// serveBenchOwn is serveBench with requests of each goroutine's own, for
// middleware that gives a request its deadline in place.
func serveBenchOwn(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		reqs := benchRequests(16)
		i := 0
		for pb.Next() {
			i++
			h.ServeHTTP(httptest.NewRecorder(), reqs[i%len(reqs)])
		}
	})
}

// BenchmarkMiddlewareTimeoutBare is BenchmarkMiddlewareBare with each
// goroutine's own requests, the baseline of BenchmarkMiddlewareTimeout.
func BenchmarkMiddlewareTimeoutBare(b *testing.B) { serveBenchOwn(b, okHandler) }

// BenchmarkMiddlewareTimeout is the handler behind an endpoint timeout of
// 1s that it never reaches (and the endpoint's breaker).
func BenchmarkMiddlewareTimeout(b *testing.B) {
	m, err := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Timeout: &core.TimeoutConfig{Request: time.Second}}})
	if err != nil {
		b.Fatal(err)
	}
	mw, err := Middleware(Config{Manager: m})
	if err != nil {
		b.Fatal(err)
	}
	serveBenchOwn(b, mw(okHandler))
}

// BenchmarkMiddlewareNoTimeout is BenchmarkMiddlewareTimeout without the
// timeout: the endpoint's breaker alone, on requests of each goroutine's
// own, so that the difference is what the deadline costs.
func BenchmarkMiddlewareNoTimeout(b *testing.B) {
	m, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	mw, err := Middleware(Config{Manager: m})
	if err != nil {
		b.Fatal(err)
	}
	serveBenchOwn(b, mw(okHandler))
}

// BenchmarkContextWithTimeout is what a deadline costs with the standard
// library, for comparison.
func BenchmarkContextWithTimeout(b *testing.B) {
	b.ReportAllocs()
	parent := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, cancel := context.WithTimeout(parent, time.Second)
			cancel()
		}
	})
}

// BenchmarkTransportHedge is a hedging endpoint whose calls are answered
// before the hedge delay.
func BenchmarkTransportHedge(b *testing.B) {
	m, err := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Hedge: &core.HedgeConfig{Delay: time.Second}}})
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTransport(TransportConfig{Manager: m, Base: memTransport{}})
	if err != nil {
		b.Fatal(err)
	}
	roundTripBench(b, tr)
}
