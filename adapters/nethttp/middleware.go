package nethttp

import "net/http"

// Middleware returns net/http middleware that runs every request through
// its endpoint's policies. A refused request never reaches next.
//
//	mw, err := nethttp.Middleware(nethttp.Config{Manager: m})
//	mux.Handle("GET /users/{id}", mw(usersHandler))
func Middleware(cfg Config) (func(http.Handler) http.Handler, error) {
	g, err := NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			g.serve(w, r, g.cfg.EndpointKey(r), next)
		})
	}, nil
}

// serve serves one request to endpoint: it refuses it, or calls next with a
// writer that records the status, then records the outcome. If next
// panics, the request is recorded as a failure, its permits are released
// and the panic goes on up with its stack.
func (g *Guard) serve(w http.ResponseWriter, r *http.Request, endpoint string, next http.Handler) {
	t, ok := g.Enter(w, r, endpoint)
	if !ok {
		return
	}
	if t == nil {
		next.ServeHTTP(w, r)
		return
	}
	finished := false
	defer func() {
		if !finished { // next panicked: no recover, so the panic keeps its stack
			t.Finish(http.StatusInternalServerError, true)
		}
	}()
	next.ServeHTTP(t.Writer(), t.Request())
	finished = true
	t.Finish(0, false)
}
