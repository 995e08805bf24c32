package bulwarkgin

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
)

// Middleware returns gin middleware that runs every routed request through
// a nethttp.Guard built from cfg, keyed by gin's full route path. It returns
// the Guard's configuration error rather than panicking.
func Middleware(cfg nethttp.Config) (gin.HandlerFunc, error) {
	g, err := nethttp.NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	return GuardMiddleware(g)
}

// GuardMiddleware returns gin middleware that runs every routed request
// through g, keyed by gin's full route path. Share one Guard between
// routers (or with net/http middleware) to give them one behaviour.
func GuardMiddleware(g *nethttp.Guard) (gin.HandlerFunc, error) {
	if g == nil {
		return nil, errors.New("bulwarkgin: nil *nethttp.Guard")
	}
	var keys nethttp.EndpointKeys
	return func(c *gin.Context) {
		endpoint := keys.Key(c.Request.Method, c.FullPath())
		t, rej, ok := g.Enter(c.Request, endpoint)
		if !ok {
			g.Reject(c.Writer, c.Request, rej)
			c.Abort()
			return
		}
		if endpoint == "" {
			c.Next()
			return
		}
		finished := false
		defer func() {
			if !finished { // the chain panicked: no recover, so the panic keeps its stack
				t.Finish(http.StatusInternalServerError, true, 0)
			}
		}()
		c.Next()
		finished = true
		t.Finish(c.Writer.Status(), false, 0)
	}, nil
}

// Endpoint returns the endpoint key of a request gin has routed: its full
// route path with the method in front, such as "GET /users/:id". It is
// empty when no route matches.
func Endpoint(c *gin.Context) string {
	return nethttp.EndpointWithMethod(c.Request.Method, c.FullPath())
}
