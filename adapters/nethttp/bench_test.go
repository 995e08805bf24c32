package nethttp

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

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
// endpoint bulkhead, breaker and SLO.
func BenchmarkMiddlewareFullStack(b *testing.B) {
	m, err := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{
			Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 1000},
			SLO:      &core.SLOConfig{},
		},
		PerUser: &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 100}},
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
// over the in-memory transport.
func BenchmarkTransport(b *testing.B) {
	m, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTransport(TransportConfig{Manager: m, Base: memTransport{}})
	if err != nil {
		b.Fatal(err)
	}
	roundTripBench(b, tr)
}
