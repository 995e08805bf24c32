package bulwarkotel_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
	bulwarkotel "github.com/bulwark-go/bulwark/otel"
)

func ExampleNew() {
	m, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	// A ManualReader, to print what is reported; a service gives the
	// provider a PeriodicReader and an exporter, or leaves MeterProvider
	// nil for the global one.
	reader := sdkmetric.NewManualReader()
	tel, err := bulwarkotel.New(bulwarkotel.Config{
		Manager:       m,
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tel.Close(context.Background())

	mw, err := nethttp.Middleware(nethttp.Config{Manager: m, Observer: tel.Observer()})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /users/{id}", mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})))
	for range 3 {
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/users/42", nil))
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			switch d := md.Data.(type) {
			case metricdata.Sum[int64]:
				if md.Name == "bulwark.circuit_breaker.calls" {
					for _, p := range d.DataPoints {
						if o, _ := p.Attributes.Value("bulwark.outcome"); o.AsString() == "success" {
							ep, _ := p.Attributes.Value("bulwark.endpoint")
							fmt.Printf("%s %s success: %d\n", md.Name, ep.AsString(), p.Value)
						}
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					fmt.Printf("%s (%s): %d calls\n", md.Name, md.Unit, p.Count)
				}
			}
		}
	}
	// Output:
	// bulwark.request.duration (s): 3 calls
	// bulwark.circuit_breaker.calls GET /users/{id} success: 3
}

// The Observer adds events to the span the application's tracing made for
// the request; here, a refusal by an open breaker.
func ExampleTelemetry_Observer() {
	m, _ := core.NewManager(core.ManagerConfig{})
	tel, err := bulwarkotel.New(bulwarkotel.Config{Manager: m, MeterProvider: sdkmetric.NewMeterProvider()})
	if err != nil {
		log.Fatal(err)
	}
	defer tel.Close(context.Background())
	mw, _ := nethttp.Middleware(nethttp.Config{Manager: m, Observer: tel.Observer()})
	mux := http.NewServeMux()
	mux.Handle("GET /orders", mw(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})))
	e, _ := m.Endpoint("GET /orders")
	e.Breaker().ForceOpen("maintenance")

	// otelhttp would start this span; a recorder keeps it here.
	spans := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)).Tracer("example")
	ctx, span := tracer.Start(context.Background(), "GET /orders")
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "GET", "/orders", nil))
	span.End()

	for _, ev := range spans.Ended()[0].Events() {
		fmt.Print(ev.Name)
		for _, kv := range ev.Attributes {
			if kv.Key == "bulwark.rejection.reason" || kv.Key == "bulwark.endpoint" {
				fmt.Printf(" %s=%s", kv.Key, kv.Value.Emit())
			}
		}
		fmt.Println()
	}
	// Output:
	// bulwark.rejection bulwark.endpoint=GET /orders bulwark.rejection.reason=circuit_open
}
