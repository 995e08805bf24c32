package nethttp_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// Inbound: every route behind a breaker, keyed by its ServeMux pattern.
func ExampleMiddleware() {
	m, _ := core.NewManager(core.ManagerConfig{Breaker: core.Config{FailureThreshold: 2}})
	mw, err := nethttp.Middleware(nethttp.Config{Manager: m})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /users/{id}", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "database down", http.StatusInternalServerError)
	})))

	for range 3 {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/users/7", nil))
		fmt.Printf("%d Retry-After=%q\n", rec.Code, rec.Header().Get("Retry-After"))
	}
	// Output:
	// 500 Retry-After=""
	// 500 Retry-After=""
	// 503 Retry-After="60"
}

// Outbound: a client whose calls go through one breaker per host, with
// retry that honours Retry-After and stops when the breaker opens.
func ExampleNewTransport() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	defer upstream.Close()

	m, _ := core.NewManager(core.ManagerConfig{})
	tr, err := nethttp.NewTransport(nethttp.TransportConfig{
		Manager: m,
		Retry:   core.RetryConfig{MaxAttempts: 3, MaxBackoff: 2 * time.Second},
	})
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := client.Get(upstream.URL)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 hello
}
