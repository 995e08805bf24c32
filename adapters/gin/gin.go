package bulwarkgin

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/internal/endpointkey"
)

// Middleware returns gin middleware that runs every routed request through
// its endpoint's policies, keyed by gin's full route path (cfg.EndpointKey
// is not used). A refused request is answered and the chain aborted. It
// returns the configuration error rather than panicking.
func Middleware(cfg nethttp.Config) (gin.HandlerFunc, error) {
	g, err := nethttp.NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	keys := endpointkey.NewCache()
	return func(c *gin.Context) {
		t, ok := g.Enter(c.Writer, c.Request, keys.Key(c.Request.Method, c.FullPath()))
		if !ok {
			c.Abort()
			return
		}
		if t == nil {
			c.Next()
			return
		}
		finished := false
		defer func() {
			if !finished { // the chain panicked: no recover, so the panic keeps its stack
				t.Finish(http.StatusInternalServerError, true)
			}
		}()
		c.Next()
		finished = true
		t.Finish(c.Writer.Status(), false)
	}, nil
}
