package bulwark_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/bulwark-go/bulwark"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/store"
)

// users is the service's own handler of GET /users/{id}.
var users = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, "user", r.PathValue("id"))
})

// The whole stack: policies for every endpoint, state that survives
// restarts, the admin dashboard, metrics, and an outbound client. The
// client calls the example's own server so that the example runs; in a
// service it calls a dependency.
func Example() {
	cfg := bulwark.Config{Defaults: core.EndpointConfig{Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 64}, SLO: &core.SLOConfig{}}}
	cfg.Store.File = &store.FileConfig{Path: filepath.Join(os.TempDir(), "bulwark-example.state")}
	kit, err := bulwark.New(cfg) // or cfg from bulwark.LoadConfig("bulwark.yaml")
	if err != nil {
		log.Fatal(err)
	}
	defer kit.Close(context.Background()) // stops every part, saves the state
	mux := http.NewServeMux()
	mux.Handle("GET /users/{id}", kit.Middleware()(users))         // breaker, bulkhead, SLO, metrics
	mux.Handle("/admin/", http.StripPrefix("/admin", kit.Admin())) // the dashboard and the admin API
	mux.Handle("GET /metrics", kit.Metrics())                      // Prometheus
	srv := httptest.NewServer(mux)                                 // in a service: http.ListenAndServe(":8080", mux)
	defer srv.Close()
	tr, _ := kit.Transport("users-api", nethttp.TransportConfig{}) // outbound: retries, breaker; errs only on a bad name
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL + "/users/42")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(os.Stdout, resp.Body)
	// Output: user 42
}
