package admin_test

import (
	"context"
	"github.com/bulwark-go/bulwark/events"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// Each router mounts the handler under /admin/ the way the package
// documentation shows; every route must work through it, the feed too.
func TestMountInRouters(t *testing.T) {
	gin.SetMode(gin.TestMode)
	routers := []struct {
		name  string
		mount func(h *admin.Handler) http.Handler
		cfg   admin.Config
	}{
		{"net/http ServeMux", func(h *admin.Handler) http.Handler {
			mux := http.NewServeMux()
			mux.Handle("/admin/", http.StripPrefix("/admin", h))
			return mux
		}, admin.Config{}},
		{"chi", func(h *admin.Handler) http.Handler {
			r := chi.NewRouter()
			r.Mount("/admin", h) // chi passes the full path: Config.Prefix strips it
			return r
		}, admin.Config{Prefix: "/admin"}},
		{"echo", func(h *admin.Handler) http.Handler {
			e := echo.New()
			e.Any("/admin/*", echo.WrapHandler(http.StripPrefix("/admin", h)))
			return e
		}, admin.Config{}},
		{"gin", func(h *admin.Handler) http.Handler {
			r := gin.New()
			r.Any("/admin/*any", gin.WrapH(http.StripPrefix("/admin", h)))
			return r
		}, admin.Config{}},
	}
	for _, rt := range routers {
		t.Run(rt.name, func(t *testing.T) {
			m := newManager(t, core.NewFakeClock(seedTime))
			cfg := rt.cfg
			cfg.Manager, cfg.Token, cfg.Settings = m, testToken, newFakeSettings(m)
			h, _ := newHandler(t, cfg)
			srv := httptest.NewServer(rt.mount(h))
			t.Cleanup(srv.Close)
			name := "GET /users/{id}"
			b := breaker(t, m, name)
			base := srv.URL + "/admin/"

			var st struct{ Breakers []core.Snapshot }
			r := do(t, "GET", base+"status", testToken, "")
			if r.code != 200 {
				t.Fatalf("status: %d %s", r.code, r.body)
			}
			r.json(t, &st)
			if len(st.Breakers) != 1 || st.Breakers[0].Endpoint != name {
				t.Fatalf("status: %s", r.body)
			}
			if r := do(t, "GET", base+"status/"+url.PathEscape(name), testToken, ""); r.code != 200 {
				t.Fatalf("endpoint status: %d %s", r.code, r.body)
			}
			if r := do(t, "POST", base+"breakers/"+url.PathEscape(name), testToken, `{"action":"force_open"}`); r.code != 200 || b.State() != events.ForcedOpen {
				t.Fatalf("control: %d %s", r.code, r.body)
			}
			if r := do(t, "PUT", base+"config/"+url.PathEscape(name), testToken, `{"breaker":{"failure_threshold":9}}`); r.code != 200 ||
				!strings.Contains(string(r.body), `"failure_threshold":9`) {
				t.Fatalf("settings: %d %s", r.code, r.body)
			}
			if r := do(t, "DELETE", base+"config/"+url.PathEscape(name), testToken, ""); r.code != 200 {
				t.Fatalf("settings reset: %d %s", r.code, r.body)
			}
			if r := do(t, "GET", base, "", ""); r.code != 200 || !strings.Contains(string(r.body), "ui/app.js") {
				t.Fatalf("page: %d", r.code)
			}
			if r := do(t, "GET", base+"ui/app.js", "", ""); r.code != 200 {
				t.Fatalf("script: %d", r.code)
			}

			// The force_open, the change and the reset are numbered 1 to 3.
			wait.For(t, patience, "three events", func() bool { return admin.Seq(h) == 3 })
			ctx, cancel := context.WithTimeout(context.Background(), patience)
			defer cancel()
			c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"ws",
				&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testToken}}})
			if err != nil {
				if resp != nil {
					body, _ := io.ReadAll(resp.Body)
					t.Fatalf("feed: %v: %d %s", err, resp.StatusCode, body)
				}
				t.Fatalf("feed: %v", err)
			}
			defer c.CloseNow()
			if m := read(t, c); m.Type != "snapshot" {
				t.Fatalf("feed: %s", m.raw)
			}
			b.Reset()
			if m := read(t, c); m.Type != "state_change" || m.Endpoint != name {
				t.Fatalf("feed event: %s", m.raw)
			}
			c.Close(websocket.StatusNormalClosure, "")
		})
	}
}
