package metrics_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/metrics"
)

func ExampleRegister() {
	m, _ := core.NewManager(core.ManagerConfig{})
	reg := prometheus.NewRegistry()
	if _, err := metrics.Register(reg, metrics.Config{Manager: m}); err != nil {
		log.Fatal(err)
	}
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	b, _ := m.Breaker("GET /users/{id}") // created after registering: still exported
	b.ForceOpen("maintenance")

	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "circuit_breaker_state{") {
			fmt.Println(line)
		}
	}
	// Output: circuit_breaker_state{endpoint="GET /users/{id}"} 1
}
