package bulwarkgin_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	bulwarkgin "github.com/bulwark-go/bulwark/adapters/gin"
	"github.com/bulwark-go/bulwark/adapters/internal/adaptertest"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

func init() { gin.SetMode(gin.TestMode) }

// adapter is bulwarkgin for the shared suite.
var adapter = adaptertest.Adapter{
	Router: func(cfg nethttp.Config, h adaptertest.Handlers) (http.Handler, error) {
		mw, err := bulwarkgin.Middleware(cfg)
		if err != nil {
			return nil, err
		}
		g := gin.New()
		g.HandleMethodNotAllowed = true
		g.Use(gin.RecoveryWithWriter(io.Discard), mw) // Recovery outside the guard turns a panic into a 500
		g.GET("/users/:id", func(c *gin.Context) {
			c.String(http.StatusOK, h.User(c.Param("id")))
		})
		g.GET("/fail/:id", func(c *gin.Context) {
			if h.Fail() {
				c.AbortWithStatus(http.StatusInternalServerError)
			}
		})
		g.GET("/slow/:id", func(c *gin.Context) { h.Slow(c.Query("hold") != "") })
		g.GET("/panic/:id", func(*gin.Context) { panic("handler bug") })
		return g, nil
	},
	Endpoints: adaptertest.Endpoints{
		Users: "GET /users/:id", Fail: "GET /fail/:id", Slow: "GET /slow/:id", Panic: "GET /panic/:id",
	},
	Bench: benchRouters,
}

func TestSuite(t *testing.T) { adaptertest.Run(t, adapter) }

// A refused request aborts the chain: handlers after the middleware, and
// middleware after it, do not run.
func TestRejectionAbortsTheChain(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, err := bulwarkgin.Middleware(nethttp.Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	var after, handler int
	g := gin.New()
	api := g.Group("/api", mw, func(c *gin.Context) { after++; c.Next() })
	api.GET("/orders/:id", func(c *gin.Context) { handler++ })
	e, err := m.Endpoint("GET /api/orders/:id")
	if err != nil {
		t.Fatal(err)
	}
	e.Breaker().ForceOpen("maintenance")

	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/orders/1", nil))
	if rec.Code != http.StatusServiceUnavailable || after != 0 || handler != 0 {
		t.Errorf("status %d, later middleware ran %d, handler ran %d", rec.Code, after, handler)
	}
	if !strings.Contains(rec.Body.String(), `"endpoint":"GET /api/orders/:id"`) {
		t.Errorf("body %q", rec.Body)
	}
}

// The admin mount shown in the package doc: reached with its prefix
// stripped, and outside the guard.
func TestAdminMount(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, _ := bulwarkgin.Middleware(nethttp.Config{Manager: m})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "admin "+r.URL.Path) })
	g := gin.New()
	g.Any("/admin/*path", gin.WrapH(http.StripPrefix("/admin", h)))
	api := g.Group("/api", mw)
	api.GET("/users/:id", func(c *gin.Context) {})
	srv := httptest.NewServer(g)
	defer srv.Close()
	if got := adaptertest.Do(t, http.MethodGet, srv.URL+"/admin/breakers", ""); got.Status != http.StatusOK || got.Body != "admin /breakers" {
		t.Errorf("admin: %d %q", got.Status, got.Body)
	}
	adaptertest.Do(t, http.MethodGet, srv.URL+"/api/users/1", "")
	if got := adaptertest.Names(m); !slices.Equal(got, []string{"GET /api/users/:id"}) {
		t.Errorf("breakers %q", got)
	}
}
