package nethttp_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// Inbound: every route behind a breaker, keyed by its ServeMux pattern.
func ExampleMiddleware() {
	m, _ := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 2}},
	})
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

// Per-user limits: the Manager's PerUser gives each user a bulkhead of
// their own; UserKey says who the user is.
func ExampleUserFromHeader() {
	m, _ := core.NewManager(core.ManagerConfig{
		PerUser: &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 1, MaxQueueSize: core.NoQueue}},
	})
	mw, err := nethttp.Middleware(nethttp.Config{Manager: m, UserKey: nethttp.UserFromHeader("X-User")})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /report", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("nested") {
			return
		}
		// While this request holds alice's one slot, another of hers is
		// refused and bob's goes through.
		for _, user := range []string{"alice", "bob"} {
			req := httptest.NewRequest("GET", "/report?nested", nil)
			req.Header.Set("X-User", user)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			fmt.Println(user, rec.Code, strings.TrimSpace(rec.Body.String()))
		}
	})))
	req := httptest.NewRequest("GET", "/report", nil)
	req.Header.Set("X-User", "alice")
	mux.ServeHTTP(httptest.NewRecorder(), req)
	// Output:
	// alice 429 {"error":"user_limit","endpoint":"GET /report","retry_after_seconds":1}
	// bob 200
}

// A router whose handlers are not http.Handlers guards them with a Guard:
// Enter before the handler, Finish after it with the status the client
// got (the echo and gin adapters work this way).
func ExampleGuard_Enter() {
	m, _ := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 1, Timeout: 30 * time.Second}},
	})
	g, err := nethttp.NewGuard(nethttp.Config{Manager: m})
	if err != nil {
		log.Fatal(err)
	}
	// handle stands in for the router's handler, which returns its status.
	handle := func(w http.ResponseWriter, _ *http.Request) int {
		http.Error(w, "upstream down", http.StatusBadGateway)
		return http.StatusBadGateway
	}
	serve := func(w http.ResponseWriter, r *http.Request, endpoint string) {
		t, ok := g.Enter(w, r, endpoint)
		if !ok {
			return // refused, and answered
		}
		if t == nil {
			handle(w, r) // no endpoint: unguarded
			return
		}
		finished := false
		defer func() {
			if !finished { // the handler panicked: a failure, and the panic goes on
				t.Finish(http.StatusInternalServerError, true)
			}
		}()
		status := handle(t.Writer(), t.Request())
		finished = true
		t.Finish(status, false)
	}

	for range 2 {
		rec := httptest.NewRecorder()
		serve(rec, httptest.NewRequest("GET", "/orders/1", nil), "GET /orders/:id")
		fmt.Println(rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// 502 upstream down
	// 503 {"error":"circuit_open","endpoint":"GET /orders/:id","retry_after_seconds":30}
}

// Outbound: a client whose calls go through one breaker per host, with
// retry that honours Retry-After and stops when the breaker opens.
func ExampleNewTransport() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello")
	}))
	defer upstream.Close()

	m, _ := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Retry: &core.RetryConfig{MaxAttempts: 3, MaxBackoff: 2 * time.Second}},
	})
	tr, err := nethttp.NewTransport(nethttp.TransportConfig{
		Manager:     m,
		EndpointKey: func(*http.Request) string { return "greeter" },
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
	e, _ := m.Lookup("greeter")
	fmt.Println(resp.StatusCode, string(body), e.Retry().Stats().Calls)
	// Output: 200 hello 1
}
