package bulwarkotel

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/metrics"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

// benchRequests returns 64 requests from 64 users to one route, in ctx.
func benchRequests(ctx context.Context) []*http.Request {
	reqs := make([]*http.Request, 64)
	for i := range reqs {
		r := httptest.NewRequestWithContext(ctx, "GET", "/users/42", nil)
		r.Header.Set("X-User", "user-"+strconv.Itoa(i))
		r.Pattern = "GET /users/{id}"
		reqs[i] = r
	}
	return reqs
}

// serveBench serves h in parallel; each goroutine's requests carry the
// context ctx returns (its own recording span, say).
func serveBench(b *testing.B, h http.Handler, ctx func() context.Context) {
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		reqs := benchRequests(ctx())
		i := next.Add(1)
		for pb.Next() {
			i++
			h.ServeHTTP(httptest.NewRecorder(), reqs[i%uint64(len(reqs))])
		}
	})
}

// benchManager has every inbound policy: per-user bulkhead, endpoint
// bulkhead, breaker and SLO.
func benchManager(b *testing.B) *core.Manager {
	b.Helper()
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
	// Prometheus reads snapshots at scrape time: nothing on the path.
	c, err := metrics.New(metrics.Config{Manager: m})
	if err != nil {
		b.Fatal(err)
	}
	prometheus.NewRegistry().MustRegister(c)
	return m
}

func middleware(b *testing.B, m *core.Manager, obs nethttp.Observer) http.Handler {
	b.Helper()
	mw, err := nethttp.Middleware(nethttp.Config{Manager: m, UserKey: nethttp.UserFromHeader("X-User"), Observer: obs})
	if err != nil {
		b.Fatal(err)
	}
	return mw(okHandler)
}

// BenchmarkMiddleware compares the handler alone (bare), behind the
// middleware with every inbound policy and the Prometheus collector
// (prometheus), and the same with the Observer on an SDK MeterProvider and
// a recording span in each request's context (otel); otel-exemplars is
// otel with Config.Exemplars, to show what the SDK's exemplars cost.
func BenchmarkMiddleware(b *testing.B) {
	background := func() context.Context { return context.Background() }
	b.Run("bare", func(b *testing.B) { serveBench(b, okHandler, background) })
	b.Run("prometheus", func(b *testing.B) { serveBench(b, middleware(b, benchManager(b), nil), background) })
	withOTel := func(exemplars bool) func(b *testing.B) {
		return func(b *testing.B) {
			m := benchManager(b)
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			tel, err := New(Config{Manager: m, MeterProvider: mp, Exemplars: exemplars})
			if err != nil {
				b.Fatal(err)
			}
			defer tel.Close(context.Background())
			tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder())).Tracer("bench")
			spans := func() context.Context {
				ctx, span := tracer.Start(context.Background(), "GET /users/{id}", trace.WithSpanKind(trace.SpanKindServer))
				if !span.IsRecording() {
					b.Fatal("the span does not record")
				}
				return ctx
			}
			serveBench(b, middleware(b, m, tel.Observer()), spans)
		}
	}
	b.Run("otel", withOTel(false))
	b.Run("otel-exemplars", withOTel(true))
}
