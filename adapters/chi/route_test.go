package bulwarkchi

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/bulwark-go/bulwark/internal/endpointkey"
)

// The key the middleware gives a request wherever it is mounted: the
// route pattern with the method in front, empty outside chi and when no
// route matches.
func TestEndpointKey(t *testing.T) {
	keys := endpointkey.NewCache()
	key := func(r *http.Request) string { return keys.Key(route(r)) }
	var got []string
	r := chi.NewRouter()
	r.Use(middleware.GetHead) // routes HEAD to GET routes
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = append(got, key(r))
			next.ServeHTTP(w, r)
		})
	})
	r.Get("/users/{id}/", func(http.ResponseWriter, *http.Request) {})
	r.With(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = append(got, "with "+key(r))
			next.ServeHTTP(w, r)
		})
	}).Get("/items/{id}/", func(http.ResponseWriter, *http.Request) {})
	for _, req := range []*http.Request{
		httptest.NewRequest(http.MethodGet, "/users/1/", nil),
		httptest.NewRequest(http.MethodHead, "/users/1/", nil),
		httptest.NewRequest(http.MethodGet, "/items/1/", nil),
		httptest.NewRequest(http.MethodPost, "/users/1/", nil),
	} {
		r.ServeHTTP(httptest.NewRecorder(), req)
	}
	want := []string{"GET /users/{id}", "GET /users/{id}", "GET /items/{id}", "with GET /items/{id}", ""}
	if !slices.Equal(got, want) {
		t.Errorf("keys %q, want %q", got, want)
	}
	if k := key(httptest.NewRequest(http.MethodGet, "/x", nil)); k != "" {
		t.Errorf("outside chi: %q, want empty", k)
	}
}
