package nethttp

import "net/http"

// Middleware returns net/http middleware that runs every request through a
// Guard built from cfg. A refused request never reaches next.
//
//	mw, err := nethttp.Middleware(nethttp.Config{Manager: m})
//	mux.Handle("GET /users/{id}", mw(usersHandler))
func Middleware(cfg Config) (func(http.Handler) http.Handler, error) {
	g, err := NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	return g.Middleware, nil
}

// Middleware wraps next with the guard, keying requests with the
// configured EndpointKey.
func (g *Guard) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.ServeHTTP(w, r, g.cfg.EndpointKey(r), next)
	})
}

// ServeHTTP serves one request to endpoint through the guard: it refuses it,
// or calls next with a writer that records the status (and keeps flushing,
// hijacking and ReadFrom working), then records the outcome. If next
// panics, the request is recorded as a failure, its permits are released
// and the panic goes on up.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request, endpoint string, next http.Handler) {
	t, rej, ok := g.Enter(r, endpoint)
	if !ok {
		g.Reject(w, r, rej)
		return
	}
	if endpoint == "" {
		next.ServeHTTP(w, r)
		return
	}
	sw := newStatusWriter(w, g.clock)
	finished := false
	defer func() {
		if !finished { // next panicked: no recover, so the panic keeps its stack
			t.Finish(http.StatusInternalServerError, true, sw.hijacked)
		}
	}()
	next.ServeHTTP(sw, r)
	finished = true
	t.Finish(sw.Status(), false, sw.hijacked)
	sw.free()
}
