package bulwarkchi_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	bulwarkchi "github.com/bulwark-go/bulwark/adapters/chi"
	"github.com/bulwark-go/bulwark/adapters/internal/adaptertest"
	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// mountFunc places the middleware and the routes in r; nil: r.Use(mw), then
// the routes at the root.
type mountFunc func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router))

// adapter is bulwarkchi for the shared suite: a chi router with the
// middleware mounted by m.
func adapter(m mountFunc) adaptertest.Adapter {
	return adaptertest.Adapter{
		Router: func(cfg nethttp.Config, h adaptertest.Handlers) (http.Handler, error) {
			mw, err := bulwarkchi.Middleware(cfg)
			if err != nil {
				return nil, err
			}
			routes := func(r chi.Router) {
				r.Get("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.WriteString(w, h.User(chi.URLParam(r, "id")))
				})
				r.Get("/fail/{id}", func(w http.ResponseWriter, _ *http.Request) {
					if h.Fail() {
						http.Error(w, "down", http.StatusInternalServerError)
					}
				})
				r.Get("/slow/{id}", func(_ http.ResponseWriter, r *http.Request) {
					h.Slow(r.URL.Query().Get("hold") != "")
				})
				r.Get("/panic/{id}", func(http.ResponseWriter, *http.Request) { panic("handler bug") })
			}
			r := chi.NewRouter()
			r.Use(middleware.Recoverer) // outside the guard: turns the panic into a 500
			if m == nil {
				r.Use(mw)
				routes(r)
			} else {
				m(r, mw, routes)
			}
			return r, nil
		},
		Endpoints: adaptertest.Endpoints{
			Users: "GET /users/{id}", Fail: "GET /fail/{id}", Slow: "GET /slow/{id}", Panic: "GET /panic/{id}",
		},
		Bench: benchRouters,
	}
}

func TestSuite(t *testing.T) { adaptertest.Run(t, adapter(nil)) }

// Wherever the middleware is mounted, a route has one key.
func TestMountPoints(t *testing.T) {
	const want = "GET /api/users/{id}"
	mounts := map[string]mountFunc{
		"root Use": func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router)) {
			r.Use(mw)
			r.Route("/api", routes)
		},
		"sub-router Use": func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router)) {
			r.Route("/api", func(r chi.Router) { r.Use(mw); routes(r) })
		},
		"Group": func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router)) {
			r.Route("/api", func(r chi.Router) { r.Group(func(r chi.Router) { r.Use(mw); routes(r) }) })
		},
		"With": func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router)) {
			r.Route("/api", func(r chi.Router) { routes(r.With(mw)) })
		},
		"mounted sub-router": func(r chi.Router, mw func(http.Handler) http.Handler, routes func(chi.Router)) {
			r.Use(mw)
			sub := chi.NewRouter()
			routes(sub)
			r.Mount("/api", sub)
		},
	}
	for name, mount := range mounts {
		t.Run(name, func(t *testing.T) {
			f := adaptertest.NewFixture(t, adapter(mount))
			for _, p := range []string{"/api/users/1", "/api/users/2"} {
				if r := f.Get(p, ""); r.Status != http.StatusOK {
					t.Fatalf("%s: status %d", p, r.Status)
				}
			}
			for range 3 {
				f.Get("/api/fail/1", "")
			}
			f.Get("/api/nothing/here", "")
			if got := adaptertest.Names(f.M); !slices.Equal(got, []string{"GET /api/fail/{id}", want}) {
				t.Fatalf("breakers %q", got)
			}
			adaptertest.CheckRejection(t, f.Get("/api/fail/2", ""), http.StatusServiceUnavailable, "circuit_open", "GET /api/fail/{id}", 10)
		})
	}
}

// A mounted plain http.Handler is one endpoint: its mount pattern.
func TestMountedHandlerIsOneEndpoint(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, err := bulwarkchi.Middleware(nethttp.Config{Manager: m})
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Use(mw)
	r.Mount("/static", http.StripPrefix("/static", http.NotFoundHandler()))
	r.Get("/files/*", func(http.ResponseWriter, *http.Request) {})
	r.Get("/", func(http.ResponseWriter, *http.Request) {})
	srv := httptest.NewServer(r)
	defer srv.Close()
	for _, p := range []string{"/files/a/b", "/files/c", "/", "/static/x"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	if got := adaptertest.Names(m); !slices.Equal(got, []string{"GET /", "GET /files/*", "GET /static/*"}) {
		t.Errorf("breakers %q", got)
	}
}

// The admin mount shown in the package doc: reached with its prefix
// stripped, and outside the guard.
func TestAdminMount(t *testing.T) {
	m, _ := core.NewManager(core.ManagerConfig{})
	mw, _ := bulwarkchi.Middleware(nethttp.Config{Manager: m})
	// chi's Mount passes the full path; admin.Config.Prefix strips it, as
	// StripPrefix does for this stand-in.
	h := http.StripPrefix("/admin", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "admin "+r.URL.Path)
	}))
	r := chi.NewRouter()
	r.Mount("/admin", h)
	r.Group(func(r chi.Router) {
		r.Use(mw)
		r.Get("/users/{id}", func(http.ResponseWriter, *http.Request) {})
	})
	srv := httptest.NewServer(r)
	defer srv.Close()
	if got := adaptertest.Do(t, http.MethodGet, srv.URL+"/admin/breakers", ""); got.Status != http.StatusOK || got.Body != "admin /breakers" {
		t.Errorf("admin: %d %q", got.Status, got.Body)
	}
	adaptertest.Do(t, http.MethodGet, srv.URL+"/users/1", "")
	if got := adaptertest.Names(m); !slices.Equal(got, []string{"GET /users/{id}"}) {
		t.Errorf("breakers %q", got)
	}
}
