package bulwarkchi_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-chi/chi/v5"

	bulwarkchi "github.com/bulwark-go/bulwark/adapters/chi"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

func ExampleMiddleware() {
	m, _ := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 2, Timeout: 30 * time.Second}},
	})
	mw, err := bulwarkchi.Middleware(nethttp.Config{Manager: m})
	if err != nil {
		panic(err)
	}
	r := chi.NewRouter()
	r.Use(mw)
	r.Get("/orders/{id}", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "database down", http.StatusInternalServerError)
	})

	for _, path := range []string{"/orders/1", "/orders/2", "/orders/3"} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if ra := rec.Header().Get("Retry-After"); ra != "" {
			fmt.Printf("%s %d Retry-After: %s %s", path, rec.Code, ra, rec.Body) // the body ends in a newline
		} else {
			fmt.Println(path, rec.Code)
		}
	}
	ep, _ := m.Lookup("GET /orders/{id}")
	fmt.Println(ep.Name(), ep.Breaker().State())
	// Output:
	// /orders/1 500
	// /orders/2 500
	// /orders/3 503 Retry-After: 30 {"error":"circuit_open","endpoint":"GET /orders/{id}","retry_after_seconds":30}
	// GET /orders/{id} Open
}
