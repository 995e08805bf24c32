package bulwarkgin_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	bulwarkgin "github.com/bulwark-go/bulwark/adapters/gin"
	"github.com/bulwark-go/bulwark/adapters/internal/adaptertest"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
)

// BenchmarkGinMiddleware serves a trivial handler through a breaker and a
// per-user bulkhead, each goroutine as its own user. "bare" is the same
// engine without the middleware; the difference is the middleware's cost.
func BenchmarkGinMiddleware(b *testing.B) { adaptertest.Bench(b, adapter) }

func benchRouters(cfg nethttp.Config) ([]adaptertest.BenchRouter, error) {
	mw, err := bulwarkgin.Middleware(cfg)
	if err != nil {
		return nil, err
	}
	ok := func(c *gin.Context) { c.Status(http.StatusNoContent) }

	bare := gin.New()
	bare.GET("/users/:id", ok)
	guarded := gin.New()
	guarded.Use(mw)
	guarded.GET("/users/:id", ok)
	return []adaptertest.BenchRouter{{Name: "bare", Handler: bare}, {Name: "guarded", Handler: guarded}}, nil
}
