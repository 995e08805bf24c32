package adaptertest

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// Bench serves GET /users/42 through each of the routers a.Bench builds,
// one sub-benchmark each, in parallel with each goroutine as its own user.
// The middleware's Config has a Manager with a breaker per endpoint and a
// per-user bulkhead keyed by X-User; the difference from "bare" is the
// middleware's cost.
func Bench(b *testing.B, a Adapter) {
	m, err := core.NewManager(core.ManagerConfig{PerUser: &core.PerUserConfig{}})
	if err != nil {
		b.Fatal(err)
	}
	routers, err := a.Bench(nethttp.Config{Manager: m, UserKey: nethttp.UserFromHeader("X-User")})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range routers {
		b.Run(c.Name, func(b *testing.B) {
			var users atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/users/42", nil)
				req.Header.Set("X-User", "user-"+strconv.FormatInt(users.Add(1), 10))
				for pb.Next() {
					rec := httptest.NewRecorder()
					c.Handler.ServeHTTP(rec, req)
					if rec.Code != http.StatusNoContent {
						b.Fatalf("status %d", rec.Code)
					}
				}
			})
		})
	}
}
