package health_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
)

// The seed's start_monitoring: watch a gRPC service every 30 seconds and
// let its health drive the "api-service" breaker.
func ExampleMonitor_Start() {
	mgr, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	mon, _ := health.NewMonitor(mgr)
	defer mon.Close()

	probe, err := health.NewGRPCProbe("http://api.example.com:9090")
	if err != nil {
		log.Fatal(err)
	}
	if err := mon.Start("api-service", probe, 30*time.Second); err != nil {
		log.Fatal(err)
	}
}

// Three failed checks in a row force the breaker open; two passes release
// it to HalfOpen. A FakeClock makes the schedule run at once.
func ExampleMonitor() {
	clock := core.NewFakeClock(time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC))
	mgr, _ := core.NewManager(core.ManagerConfig{Clock: clock})
	mon, _ := health.NewMonitor(mgr, health.WithClock(clock))
	defer mon.Close()

	var healthy atomic.Bool
	probe, _ := health.NewCustomProbe("db", health.CheckerFunc(func(context.Context) error {
		if !healthy.Load() {
			return errors.New("connection refused")
		}
		return nil
	}))
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

	probe, _ := health.NewHTTPProbe(srv.URL+"/health", health.WithTimeout(2*time.Second))
	r := probe.Check(context.Background())
	fmt.Println(r.OK, r.Err)
	// Output: false status 503 Service Unavailable, want 200-399
}

func ExampleNewGRPCProbe() {
	// A gRPC server with the standard health service.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := grpc.NewServer()
	hs := grpchealth.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	probe, _ := health.NewGRPCProbe(ln.Addr().String(), health.WithTimeout(2*time.Second))
	fmt.Println(probe.Check(context.Background()).OK)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	fmt.Println(probe.Check(context.Background()).Err)
	// Output:
	// true
	// health status NOT_SERVING
}

// A custom check, the seed's CustomHealthChecker.
func ExampleNewCustomProbe() {
	probe, _ := health.NewCustomProbe("database", health.CheckerFunc(func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", "127.0.0.1:1") // nothing listens there
		if err != nil {
			return errors.New("database unreachable")
		}
		return conn.Close()
	}))
	r := probe.Check(context.Background())
	fmt.Println(r.Probe, r.OK, r.Err)
	// Output: database false database unreachable
}
