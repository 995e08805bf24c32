package bulwarkecho

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/internal/endpointkey"
)

// Middleware returns echo middleware that runs every routed request
// through its endpoint's policies, keyed by echo's route path (cfg.EndpointKey
// is not used). Register it with e.Use, not e.Pre: before routing no route
// is known. It returns the configuration error rather than panicking.
func Middleware(cfg nethttp.Config) (echo.MiddlewareFunc, error) {
	g, err := nethttp.NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	keys := endpointkey.NewCache()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			t, ok := g.Enter(c.Response(), c.Request(), keys.Key(route(c)))
			if !ok {
				return nil
			}
			if t == nil {
				return next(c)
			}
			finished := false
			defer func() {
				if !finished { // next panicked: no recover, so the panic keeps its stack
					t.Finish(http.StatusInternalServerError, true)
				}
			}()
			err := next(c)
			finished = true
			t.Finish(status(c.Response(), err), false)
			return err
		}
	}, nil
}

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
