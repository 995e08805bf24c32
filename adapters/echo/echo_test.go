package bulwarkecho_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/labstack/echo/v4"

	bulwarkecho "github.com/bulwark-go/bulwark/adapters/echo"
	"github.com/bulwark-go/bulwark/adapters/internal/adaptertest"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// adapter is bulwarkecho for the shared suite. Its router has one more
// route, /err/:kind, that returns the error named by kind.
var adapter = adaptertest.Adapter{
	Router: func(cfg nethttp.Config, h adaptertest.Handlers) (http.Handler, error) {
		mw, err := bulwarkecho.Middleware(cfg)
		if err != nil {
			return nil, err
		}
		e := echo.New()
		e.Use(recoverer, mw) // outside the guard: turns a panic into a 500
		e.GET("/users/:id", func(c echo.Context) error {
			return c.String(http.StatusOK, h.User(c.Param("id")))
		})
		e.GET("/fail/:id", func(c echo.Context) error {
			if h.Fail() {
				return errors.New("database down") // echo's error handler answers 500
			}
			return c.NoContent(http.StatusOK)
		})
		e.GET("/slow/:id", func(c echo.Context) error {
			h.Slow(c.QueryParam("hold") != "")
			return c.NoContent(http.StatusOK)
		})
		e.GET("/panic/:id", func(echo.Context) error { panic("handler bug") })
		e.GET("/err/:kind", func(c echo.Context) error {
			switch c.Param("kind") {
			case "notfound":
				return echo.ErrNotFound
			case "unavailable":
				return echo.NewHTTPError(http.StatusServiceUnavailable, "try later")
			case "internal-notfound":
				return echo.NewHTTPError(http.StatusInternalServerError).SetInternal(echo.ErrNotFound)
			case "wrapped":
				return fmt.Errorf("lookup: %w", echo.ErrNotFound) // echo answers 500
			case "written":
				_ = c.String(http.StatusOK, "partial")
				return errors.New("stream broke") // the client already has its 200
			case "written-500":
				return c.String(http.StatusInternalServerError, "oops")
			}
			return errors.New("boom")
		})
		return e, nil
	},
	Endpoints: adaptertest.Endpoints{
		Users: "GET /users/:id", Fail: "GET /fail/:id", Slow: "GET /slow/:id", Panic: "GET /panic/:id",
	},
	Bench: benchRouters,
	// echo wraps the handler in every e.Use middleware on each request.
	MountAllocs: 1,
}

// recoverer stands in for echo's middleware.Recover, which would bring in
// another module.
func recoverer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("panic: %v", v)
			}
		}()
		return next(c)
	}
}

func TestSuite(t *testing.T) { adaptertest.Run(t, adapter) }

// The outcome follows the status the client gets from a returned error.
func TestReturnedErrors(t *testing.T) {
	for _, c := range []struct {
		kind    string
		status  int
		failure bool
	}{
		{"plain", 500, true},
		{"notfound", 404, false},
		{"unavailable", 503, true},
		{"internal-notfound", 404, false},
		{"wrapped", 500, true},
		{"written", 200, false},
		{"written-500", 500, true},
	} {
		t.Run(c.kind, func(t *testing.T) {
			f := adaptertest.NewFixture(t, adapter)
			if r := f.Get("/err/"+c.kind, ""); r.Status != c.status {
				t.Fatalf("status %d, want %d", r.Status, c.status)
			}
			s := f.Breaker("GET /err/:kind").Snapshot()
			if got := s.FailedRequests == 1; got != c.failure || s.TotalRequests != 1 {
				t.Errorf("failed %d of %d, want failure %v", s.FailedRequests, s.TotalRequests, c.failure)
			}
		})
	}
}

// Group and route middleware see the route too; a group's catch-all for
// unmatched paths is bounded by its methods.
func TestGroupAndRouteMiddleware(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, err := bulwarkecho.Middleware(nethttp.Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	api := e.Group("/api")
	api.Use(mw)
	api.GET("/users/:id", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	e.GET("/items/:id", func(c echo.Context) error { return c.NoContent(http.StatusOK) }, mw)
	e.GET("/open", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/users/1", 200},
		{"GET", "/api/users/2", 200},
		{"GET", "/items/7", 200},
		{"GET", "/open", 200},
		{"GET", "/api/nothing", 404},
		{"BREW", "/api/nothing", 404},
		{"PROPPATCH", "/api/nothing", 404},
	} {
		if r := adaptertest.Do(t, c.method, srv.URL+c.path, ""); r.Status != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, r.Status, c.status)
		}
	}
	want := []string{"GET /api/*", "GET /api/users/:id", "GET /items/:id"}
	if got := adaptertest.Names(m); !slices.Equal(got, want) {
		t.Errorf("breakers %q, want %q", got, want)
	}
}

func TestPreMiddlewareIsUnguarded(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, _ := bulwarkecho.Middleware(nethttp.Config{Manager: m})
	e := echo.New()
	e.Pre(mw)
	e.GET("/users/:id", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/users/1", nil))
	if rec.Code != http.StatusOK || len(m.Endpoints()) != 0 {
		t.Errorf("status %d, breakers %q: before routing there is no route, so no guard", rec.Code, adaptertest.Names(m))
	}
}

// The admin mount shown in the package doc: reached with its prefix
// stripped, and outside the guard.
func TestAdminMount(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, _ := bulwarkecho.Middleware(nethttp.Config{Manager: m})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "admin "+r.URL.Path) })
	e := echo.New()
	e.Any("/admin/*", echo.WrapHandler(http.StripPrefix("/admin", h)))
	api := e.Group("/api", mw)
	api.GET("/users/:id", func(c echo.Context) error { return c.NoContent(http.StatusOK) })
	srv := httptest.NewServer(e)
	defer srv.Close()
	if got := adaptertest.Do(t, http.MethodGet, srv.URL+"/admin/breakers", ""); got.Status != http.StatusOK || got.Body != "admin /breakers" {
		t.Errorf("admin: %d %q", got.Status, got.Body)
	}
	adaptertest.Do(t, http.MethodGet, srv.URL+"/api/users/1", "")
	if got := adaptertest.Names(m); !slices.Equal(got, []string{"GET /api/users/:id"}) {
		t.Errorf("breakers %q", got)
	}
}

// The allocation the suite allows for mounting a middleware with e.Use is
// echo's own: a middleware that does nothing costs as much.
func TestMountAllocs(t *testing.T) {
	adaptertest.SkipAllocs(t)
	ok := func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }
	bare := echo.New()
	bare.GET("/users/:id", ok)
	noop := echo.New()
	noop.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { return next(c) }
	})
	noop.GET("/users/:id", ok)
	req := httptest.NewRequest(http.MethodGet, "/users/42", nil)
	allocs := func(h http.Handler) float64 {
		w := &headerWriter{http.Header{}}
		return testing.AllocsPerRun(100, func() {
			clear(w.h)
			h.ServeHTTP(w, req)
		})
	}
	if got := allocs(noop) - allocs(bare); got != adapter.MountAllocs {
		t.Errorf("a middleware that does nothing costs %v allocations, the suite allows %v", got, adapter.MountAllocs)
	}
}

// headerWriter keeps nothing but its header map.
type headerWriter struct{ h http.Header }

func (w *headerWriter) Header() http.Header         { return w.h }
func (w *headerWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *headerWriter) WriteHeader(int)             {}
