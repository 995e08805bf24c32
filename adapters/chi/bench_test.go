package bulwarkchi_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"

	bulwarkchi "github.com/bulwark-go/bulwark/adapters/chi"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// BenchmarkChiMiddleware serves a trivial handler through a breaker and a
// per-user bulkhead, each goroutine as its own user. "bare" is the same
// router without the middleware; the difference is the middleware's cost.
// "root" mounts it with r.Use (the pattern is looked up before routing),
// "with" inline with r.With (the pattern chi found is used).
func BenchmarkChiMiddleware(b *testing.B) {
	m, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	pu, err := core.NewPerUserBulkhead(core.PerUserConfig{})
	if err != nil {
		b.Fatal(err)
	}
	mw, err := bulwarkchi.Middleware(nethttp.Config{
		Manager: m, PerUser: pu, UserKey: nethttp.UserFromHeader("X-User"),
	})
	if err != nil {
		b.Fatal(err)
	}
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

	bare := chi.NewRouter()
	bare.Get("/users/{id}", ok)
	root := chi.NewRouter()
	root.Use(mw)
	root.Get("/users/{id}", ok)
	with := chi.NewRouter()
	with.With(mw).Get("/users/{id}", ok)

	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"root", root}, {"with", with}} {
		b.Run(c.name, func(b *testing.B) {
			var users atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/users/42", nil)
				req.Header.Set("X-User", "user-"+strconv.FormatInt(users.Add(1), 10))
				for pb.Next() {
					rec := httptest.NewRecorder()
					c.h.ServeHTTP(rec, req)
					if rec.Code != http.StatusNoContent {
						b.Fatalf("status %d", rec.Code)
					}
				}
			})
		})
	}
}
