package health_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
)

// Three failed checks in a row force the breaker open; two passes release
// it to HalfOpen. A FakeClock makes the schedule run at once.
func ExampleMonitor() {
	clock := core.NewFakeClock(time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC))
	mgr, _ := core.NewManager(core.ManagerConfig{Clock: clock})
	mon, _ := health.NewMonitor(mgr, health.WithClock(clock))
	defer mon.Close()

	var healthy atomic.Bool
	probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "db", Checker: health.CheckerFunc(func(context.Context) error {
		if !healthy.Load() {
			return errors.New("connection refused")
		}
		return nil
	})})
	_ = mon.Start("orders", probe, 10*time.Second)
	breaker, _ := mgr.Breaker("orders")

	next := func() { // wait for the current check, then run the next one
		clock.WaitForTimers(1, time.Second)
		clock.Advance(10 * time.Second)
		clock.WaitForTimers(1, time.Second)
	}
	next()
	next()
	fmt.Println(breaker.State(), "-", breaker.Snapshot().Reason)
	healthy.Store(true)
	next()
	fmt.Println(breaker.State())
	next()
	st, _ := mon.Status("orders")
	fmt.Println(breaker.State(), "healthy:", st.Healthy)
	// Output:
	// ForcedOpen - forced open: health check db failed 3 times: connection refused
	// ForcedOpen
	// HalfOpen healthy: true
}

func ExampleNewHTTPProbe() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	probe, _ := health.NewHTTPProbe(health.HTTPProbeConfig{URL: srv.URL + "/health", Timeout: 2 * time.Second})
	r := probe.Check(context.Background())
	fmt.Println(r.OK, r.Err)
	// Output: false status 503 Service Unavailable, want 200-399
}

// A custom check, the seed's CustomHealthChecker.
func ExampleNewCustomProbe() {
	probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "database", Checker: health.CheckerFunc(func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", "127.0.0.1:1") // nothing listens there
		if err != nil {
			return errors.New("database unreachable")
		}
		return conn.Close()
	})})
	r := probe.Check(context.Background())
	fmt.Println(r.Probe, r.OK, r.Err)
	// Output: database false database unreachable
}
