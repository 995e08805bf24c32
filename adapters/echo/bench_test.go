package bulwarkecho_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"

	bulwarkecho "github.com/bulwark-go/bulwark/adapters/echo"
	"github.com/bulwark-go/bulwark/adapters/internal/adaptertest"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
)

// BenchmarkEchoMiddleware serves a trivial handler through a breaker and a
// per-user bulkhead, each goroutine as its own user. "bare" is the same
// server without the middleware; the difference is the middleware's cost.
func BenchmarkEchoMiddleware(b *testing.B) { adaptertest.Bench(b, adapter) }

func benchRouters(cfg nethttp.Config) ([]adaptertest.BenchRouter, error) {
	mw, err := bulwarkecho.Middleware(cfg)
	if err != nil {
		return nil, err
	}
	ok := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }

	bare := echo.New()
	bare.GET("/users/:id", ok)
	guarded := echo.New()
	guarded.Use(mw)
	guarded.GET("/users/:id", ok)
	return []adaptertest.BenchRouter{{Name: "bare", Handler: bare}, {Name: "guarded", Handler: guarded}}, nil
}
