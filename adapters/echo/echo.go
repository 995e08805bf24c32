package bulwarkecho

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
)

// Middleware returns echo middleware that runs every routed request through
// a nethttp.Guard built from cfg, keyed by echo's route path. It returns the
// Guard's configuration error rather than panicking.
func Middleware(cfg nethttp.Config) (echo.MiddlewareFunc, error) {
	g, err := nethttp.NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	return GuardMiddleware(g)
}

// GuardMiddleware returns echo middleware that runs every routed request
// through g, keyed by echo's route path. Share one Guard between routers
// (or with net/http middleware) to give them one behaviour.
func GuardMiddleware(g *nethttp.Guard) (echo.MiddlewareFunc, error) {
	if g == nil {
		return nil, errors.New("bulwarkecho: nil *nethttp.Guard")
	}
	var keys nethttp.EndpointKeys
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			endpoint := keys.Key(route(c))
			t, rej, ok := g.Enter(r, endpoint)
			if !ok {
				g.Reject(c.Response(), r, rej)
				return nil
			}
			if endpoint == "" {
				return next(c)
			}
			finished := false
			defer func() {
				if !finished { // next panicked: no recover, so the panic keeps its stack
					t.Finish(http.StatusInternalServerError, true, 0)
				}
			}()
			err := next(c)
			finished = true
			t.Finish(status(c.Response(), err), false, 0)
			return err
		}
	}, nil
}

// Endpoint returns the endpoint key of a request echo has routed: its route
// path with the method in front, such as "GET /users/:id". It is empty when
// no route matches the path and method, and for methods outside echo's
// standard set.
func Endpoint(c echo.Context) string { return nethttp.EndpointWithMethod(route(c)) }

// route returns the request's method and route path; the path is empty
// when the request is not to be guarded.
func route(c echo.Context) (method, path string) {
	method, path = c.Request().Method, c.Path()
	if path == "" || !standardMethod(method) {
		return method, ""
	}
	if c.Get(echo.ContextKeyHeaderAllow) != nil {
		return method, "" // echo answers 405: the path matched, the method did not
	}
	return method, path
}

// standardMethod reports whether m is one of the methods echo's Any
// registers.
func standardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions,
		http.MethodConnect, http.MethodTrace, echo.PROPFIND, echo.REPORT:
		return true
	}
	return false
}

// status returns the status a request ends with, as echo's default error
// handler will answer it: the status written when the response is
// committed (the error handler then writes nothing); otherwise, when the
// handler returned an error, the code of an *echo.HTTPError (or of the
// *echo.HTTPError in its Internal field) and 500 for any other error;
// otherwise the response's status, 200 unless set.
func status(res *echo.Response, err error) int {
	if err == nil || res.Committed {
		return res.Status
	}
	he, ok := err.(*echo.HTTPError) // not errors.As: echo's handler does not unwrap either
	if !ok {
		return http.StatusInternalServerError
	}
	if in, ok := he.Internal.(*echo.HTTPError); ok {
		he = in
	}
	return he.Code
}
