package bulwarkchi_test

import (
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"

	bulwarkchi "github.com/bulwark-go/bulwark/adapters/chi"
	"github.com/bulwark-go/bulwark/adapters/internal/adaptertest"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
)

// BenchmarkChiMiddleware serves a trivial handler through a breaker and a
// per-user bulkhead, each goroutine as its own user. "bare" is the same
// router without the middleware; the difference is the middleware's cost.
// "root" mounts it with r.Use (the pattern is looked up before routing),
// "with" inline with r.With (the pattern chi found is used).
func BenchmarkChiMiddleware(b *testing.B) { adaptertest.Bench(b, adapter(nil)) }

func benchRouters(cfg nethttp.Config) ([]adaptertest.BenchRouter, error) {
	mw, err := bulwarkchi.Middleware(cfg)
	if err != nil {
		return nil, err
	}
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

	bare := chi.NewRouter()
	bare.Get("/users/{id}", ok)
	root := chi.NewRouter()
	root.Use(mw)
	root.Get("/users/{id}", ok)
	with := chi.NewRouter()
	with.With(mw).Get("/users/{id}", ok)
	return []adaptertest.BenchRouter{
		{Name: "bare", Handler: bare}, {Name: "root", Handler: root}, {Name: "with", Handler: with},
	}, nil
}
