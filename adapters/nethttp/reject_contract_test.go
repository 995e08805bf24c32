package nethttp

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
)

// nowCounter is a FakeClock that counts precise wall-clock reads (Now): on
// the system clock each one is a time.Now.
type nowCounter struct {
	*core.FakeClock
	now atomic.Int64
}

func (c *nowCounter) Now() time.Time { c.now.Add(1); return c.FakeClock.Now() }

type nullWriter struct{ h http.Header }

func (w *nullWriter) Header() http.Header         { return w.h }
func (w *nullWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nullWriter) WriteHeader(int)             {}

// A request refused by an Open breaker (every request during an outage)
// reads no precise clock and allocates nothing.
func TestRejectedRequestReadsNoPreciseClockAndAllocatesNothing(t *testing.T) {
	clk := &nowCounter{FakeClock: core.NewFakeClock(t0)}
	m, err := core.NewManager(core.ManagerConfig{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(Config{Manager: m, EndpointKey: func(*http.Request) string { return "api" }})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.Breaker("api")
	b.Trip("test")
	req, _ := http.NewRequest("GET", "/x", nil)
	next := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Fatal("handler ran") })
	w := &nullWriter{h: http.Header{}}
	h := g.Middleware(next)
	before := clk.now.Load()
	h.ServeHTTP(w, req)
	if n := clk.now.Load() - before; n != 0 {
		t.Errorf("a rejected request read the precise clock %d times", n)
	}
	allocs := testing.AllocsPerRun(100, func() {
		clear(w.h)
		h.ServeHTTP(w, req)
	})
	if allocs > 0 {
		t.Errorf("a rejected request allocates %v times", allocs)
	}
}
