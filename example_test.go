package bulwark_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/go-chi/chi/v5"

	"github.com/bulwark-go/bulwark"
	bulwarkchi "github.com/bulwark-go/bulwark/adapters/chi"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/store"
)

// The whole stack in a few lines: policies for every endpoint, state that
// survives restarts, the admin dashboard, metrics, and an outbound client.
func Example() {
	dir, _ := os.MkdirTemp("", "bulwark")
	defer os.RemoveAll(dir)

	kit, err := bulwark.New(bulwark.Config{
		Defaults: core.EndpointConfig{Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 64}},
		Store:    bulwark.StoreConfig{File: &store.FileConfig{Path: filepath.Join(dir, "breakers.state")}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer kit.Close(context.Background())
	mw, err := bulwarkchi.Middleware(kit.HTTP())
	if err != nil {
		log.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount("/admin", kit.Admin())
	r.Handle("/metrics", kit.Metrics())
	r.With(mw).Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "user", chi.URLParam(r, "id")) })
	quotes, err := kit.Transport("quotes", nethttp.TransportConfig{}) // &http.Client{Transport: quotes} calls the quote service
	if err != nil {
		log.Fatal(err)
	}
	_ = quotes

	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/users/42", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	b := kit.Manager().Endpoints()[0]
	fmt.Println(b.Name(), b.Breaker().State(), b.Bulkhead().Stats().Admitted)
	// Output:
	// 200 user 42
	// GET /users/{id} Closed 1
}
