package metrics_test

import (
	"fmt"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/metrics"
)

func ExampleNew() {
	m, _ := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 64}},
	})
	c, err := metrics.New(metrics.Config{Manager: m})
	if err != nil {
		log.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	handler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{}) // mount it at /metrics

	e, _ := m.Endpoint("GET /users/{id}") // made after registering: still exported
	e.Breaker().ForceOpen("maintenance")

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "circuit_breaker_state{") || strings.HasPrefix(line, "bulkhead_active_requests{") {
			fmt.Println(line)
		}
	}
	// Output:
	// bulkhead_active_requests{endpoint="GET /users/{id}"} 0
	// circuit_breaker_state{endpoint="GET /users/{id}"} 1
}
