package bulwarkotel

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/bulwark-go/bulwark/core"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newManager(t testing.TB, cfg core.ManagerConfig) *core.Manager {
	t.Helper()
	m, err := core.NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func endpoint(t testing.TB, m *core.Manager, name string) *core.Endpoint {
	t.Helper()
	e, err := m.Endpoint(name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newTelemetry returns a Telemetry over m on an SDK MeterProvider with a
// ManualReader, closed when the test ends.
func newTelemetry(t testing.TB, cfg Config) (*Telemetry, *sdkmetric.ManualReader) {
	t.Helper()
	r := sdkmetric.NewManualReader()
	cfg.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	tel, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Close(context.Background()) })
	return tel, r
}

// collect returns the metrics of the package's scope.
func collect(t testing.TB, r *sdkmetric.ManualReader) []metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != scope {
			t.Errorf("instrumentation scope %q", sm.Scope.Name)
			continue
		}
		out = append(out, sm.Metrics...)
	}
	return out
}

// attrs renders a set as {k=v,...}, sorted by key.
func attrs(s attribute.Set) string {
	var parts []string
	for _, kv := range s.ToSlice() {
		parts = append(parts, string(kv.Key)+"="+kv.Value.Emit())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// lines renders every data point of ms as "name{attrs} value" (for a
// histogram, "count=N sum=S"), sorted; only the names given, or all.
func lines(ms []metricdata.Metrics, names ...string) []string {
	var out []string
	for _, m := range ms {
		if len(names) > 0 && !slices.Contains(names, m.Name) {
			continue
		}
		switch d := m.Data.(type) {
		case metricdata.Sum[int64]:
			for _, p := range d.DataPoints {
				out = append(out, fmt.Sprintf("%s%s %d", m.Name, attrs(p.Attributes), p.Value))
			}
		case metricdata.Sum[float64]:
			for _, p := range d.DataPoints {
				out = append(out, fmt.Sprintf("%s%s %g", m.Name, attrs(p.Attributes), p.Value))
			}
		case metricdata.Gauge[float64]:
			for _, p := range d.DataPoints {
				out = append(out, fmt.Sprintf("%s%s %g", m.Name, attrs(p.Attributes), p.Value))
			}
		case metricdata.Histogram[float64]:
			for _, p := range d.DataPoints {
				out = append(out, fmt.Sprintf("%s%s count=%d sum=%g", m.Name, attrs(p.Attributes), p.Count, p.Sum))
			}
		default:
			out = append(out, fmt.Sprintf("%s: unexpected data %T", m.Name, m.Data))
		}
	}
	slices.Sort(out)
	return out
}

func compareLines(t *testing.T, got []string, want string) {
	t.Helper()
	var w []string
	for _, l := range strings.Split(strings.TrimSpace(want), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			w = append(w, l)
		}
	}
	slices.Sort(w)
	if !slices.Equal(got, w) {
		t.Fatalf("got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(w, "\n\t"))
	}
}

// tracing is an SDK tracer whose ended spans a recorder keeps.
type tracing struct {
	rec    *tracetest.SpanRecorder
	tracer trace.Tracer
}

func newTracing() tracing {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	return tracing{rec: rec, tracer: tp.Tracer("test")}
}

// serve serves r to h inside a recording span and returns the span, ended,
// and the response.
func (tr tracing) serve(h http.Handler, r *http.Request) (sdktrace.ReadOnlySpan, *httptest.ResponseRecorder) {
	ctx, span := tr.tracer.Start(r.Context(), r.Pattern)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(ctx))
	span.End()
	return span.(sdktrace.ReadOnlySpan), w
}

// spanEvents renders a span's events as "name{attrs}", in order.
func spanEvents(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, e := range s.Events() {
		out = append(out, e.Name+attrs(attribute.NewSet(e.Attributes...)))
	}
	return out
}

func spanAttrs(s sdktrace.ReadOnlySpan) string { return attrs(attribute.NewSet(s.Attributes()...)) }
