package bulwarkgin_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"

	bulwarkgin "github.com/bulwark-go/bulwark/adapters/gin"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// BenchmarkGinMiddleware serves a trivial handler through a breaker and a
// per-user bulkhead, each goroutine as its own user. "bare" is the same
// engine without the middleware; the difference is the middleware's cost.
func BenchmarkGinMiddleware(b *testing.B) {
	m, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	pu, err := core.NewPerUserBulkhead(core.PerUserConfig{})
	if err != nil {
		b.Fatal(err)
	}
	mw, err := bulwarkgin.Middleware(nethttp.Config{
		Manager: m, PerUser: pu, UserKey: nethttp.UserFromHeader("X-User"),
	})
	if err != nil {
		b.Fatal(err)
	}
	ok := func(c *gin.Context) { c.Status(http.StatusNoContent) }

	bare := gin.New()
	bare.GET("/users/:id", ok)
	guarded := gin.New()
	guarded.Use(mw)
	guarded.GET("/users/:id", ok)

	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"guarded", guarded}} {
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
