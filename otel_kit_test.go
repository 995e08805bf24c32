package bulwark

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// "otel: true" reports through the global MeterProvider: the middleware's
// durations and the breakers' instruments.
func TestOTelFromTheFile(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	prev := otel.GetMeterProvider()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	t.Cleanup(func() { otel.SetMeterProvider(prev) })

	cfg, err := ParseConfig("b.yaml", []byte("otel: true\n"))
	if err != nil || cfg.OTel == nil {
		t.Fatalf("otel: true: %v, %+v", err, cfg.OTel)
	}
	k := newKit(t, cfg)
	mux := http.NewServeMux()
	mux.Handle("GET /x", k.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			seen[m.Name] = true
		}
	}
	for _, name := range []string{"bulwark.request.duration", "bulwark.circuit_breaker.state", "bulwark.circuit_breaker.calls"} {
		if !seen[name] {
			t.Errorf("%s not reported; got %v", name, seen)
		}
	}

	for _, tc := range []struct{ file, want string }{
		{"otel: false\n", ""},
		{"otel: {exemplars: true, no_span_events: true}\n", ""},
		{"otel: {exemplar: true}\n", "b.yaml: otel.exemplar"},
		{"otel: 3\n", "b.yaml: otel"},
	} {
		cfg, err := ParseConfig("b.yaml", []byte(tc.file))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.file, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: %v, want an error naming %s", tc.file, err, tc.want)
		case tc.file == "otel: false\n" && cfg.OTel != nil:
			t.Errorf("otel: false turned it on")
		case strings.Contains(tc.file, "exemplars") && (cfg.OTel == nil || !cfg.OTel.Exemplars || !cfg.OTel.NoSpanEvents):
			t.Errorf("%q gave %+v", tc.file, cfg.OTel)
		}
	}
}
