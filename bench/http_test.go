package bench

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
	"github.com/failsafe-go/failsafe-go/bulkhead"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })

func serveParallel(b *testing.B, h http.Handler) {
	reqs := make([]*http.Request, 64)
	for i := range reqs {
		r := httptest.NewRequest("GET", "/users/42", nil)
		r.Header.Set("X-User", "user-"+strconv.Itoa(i))
		r.Pattern = "GET /users/{id}"
		reqs[i] = r
	}
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

// BenchmarkMiddleware: a trivial handler alone, behind Bulwark's full
// inbound stack (per-user bulkhead, endpoint bulkhead, breaker, SLO), and
// behind failsafe-go's handler with a breaker and a bulkhead.
func BenchmarkMiddleware(b *testing.B) {
	b.Run("bare", func(b *testing.B) { serveParallel(b, okHandler) })
	b.Run("bulwark", func(b *testing.B) {
		m, _ := core.NewManager(core.ManagerConfig{
			Defaults: core.EndpointConfig{Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 1000}, SLO: &core.SLOConfig{}},
			PerUser:  &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 100}},
		})
		mw, err := nethttp.Middleware(nethttp.Config{Manager: m, UserKey: nethttp.UserFromHeader("X-User")})
		if err != nil {
			b.Fatal(err)
		}
		serveParallel(b, mw(okHandler))
	})
	b.Run("failsafe-go", func(b *testing.B) {
		cb := circuitbreaker.NewWithDefaults[*http.Response]()
		bh := bulkhead.New[*http.Response](1000)
		serveParallel(b, failsafehttp.NewHandler(okHandler, cb, bh))
	})
}

type memTransport struct{}

func (memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

func roundTripParallel(b *testing.B, rt http.RoundTripper) {
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

// BenchmarkTransport: an in-memory transport alone, behind Bulwark's
// Transport (breaker + retry) and behind failsafe-go's round tripper
// (retry + breaker).
func BenchmarkTransport(b *testing.B) {
	b.Run("bare", func(b *testing.B) { roundTripParallel(b, memTransport{}) })
	b.Run("bulwark", func(b *testing.B) {
		m, _ := core.NewManager(core.ManagerConfig{})
		tr, err := nethttp.NewTransport(nethttp.TransportConfig{Manager: m, Base: memTransport{}})
		if err != nil {
			b.Fatal(err)
		}
		roundTripParallel(b, tr)
	})
	b.Run("failsafe-go", func(b *testing.B) {
		rp := retrypolicy.NewWithDefaults[*http.Response]()
		cb := circuitbreaker.NewWithDefaults[*http.Response]()
		roundTripParallel(b, failsafehttp.NewRoundTripper(memTransport{}, rp, cb))
	})
}
