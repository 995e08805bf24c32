package bench

import (
	"net/http"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/core"
)

// BenchmarkHedge: calls answered at once, well before a hedge delay of 1s,
// through an in-memory transport alone, Bulwark's Transport with a hedge
// policy (and the endpoint's breaker and retry), and failsafe-go's round
// tripper with its hedge policy. What is measured is the price of being
// ready to hedge.
func BenchmarkHedge(b *testing.B) {
	b.Run("bare", func(b *testing.B) { roundTripParallel(b, memTransport{}) })
	b.Run("bulwark", func(b *testing.B) {
		m, err := core.NewManager(core.ManagerConfig{Defaults: core.EndpointConfig{Hedge: &core.HedgeConfig{Delay: time.Second}}})
		if err != nil {
			b.Fatal(err)
		}
		tr, err := nethttp.NewTransport(nethttp.TransportConfig{Manager: m, Base: memTransport{}})
		if err != nil {
			b.Fatal(err)
		}
		roundTripParallel(b, tr)
	})
	b.Run("failsafe-go", func(b *testing.B) {
		hp := hedgepolicy.NewWithDelay[*http.Response](time.Second)
		roundTripParallel(b, failsafehttp.NewRoundTripper(memTransport{}, hp))
	})
}
