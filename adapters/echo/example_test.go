package bulwarkecho_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/labstack/echo/v4"

	bulwarkecho "github.com/bulwark-go/bulwark/adapters/echo"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

func ExampleMiddleware() {
	m, _ := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 2, Timeout: 30 * time.Second}},
	})
	mw, err := bulwarkecho.Middleware(nethttp.Config{Manager: m})
	if err != nil {
		panic(err)
	}
	e := echo.New()
	e.Use(mw)
	e.GET("/orders/:id", func(echo.Context) error {
		return errors.New("database down") // echo answers 500
	})

	for _, path := range []string{"/orders/1", "/orders/2", "/orders/3"} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
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
