package bulwarkgin_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/gin-gonic/gin"

	bulwarkgin "github.com/bulwark-go/bulwark/adapters/gin"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

func ExampleMiddleware() {
	gin.SetMode(gin.ReleaseMode)
	m, _ := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 2, Timeout: 30 * time.Second}},
	})
	mw, err := bulwarkgin.Middleware(nethttp.Config{Manager: m})
	if err != nil {
		panic(err)
	}
	g := gin.New()
	g.Use(mw)
	g.GET("/orders/:id", func(c *gin.Context) {
		c.String(http.StatusInternalServerError, "database down")
	})

	for _, path := range []string{"/orders/1", "/orders/2", "/orders/3"} {
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if ra := rec.Header().Get("Retry-After"); ra != "" {
			fmt.Printf("%s %d Retry-After: %s %s", path, rec.Code, ra, rec.Body) // the body ends in a newline
		} else {
			fmt.Println(path, rec.Code)
		}
	}
	ep, _ := m.Lookup("GET /orders/:id")
	fmt.Println(ep.Name(), ep.Breaker().State())
	// Output:
	// /orders/1 500
	// /orders/2 500
	// /orders/3 503 Retry-After: 30 {"error":"circuit_open","endpoint":"GET /orders/:id","retry_after_seconds":30}
	// GET /orders/:id Open
}
