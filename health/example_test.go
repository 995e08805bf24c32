package health_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
)

// Three failed checks in a row force the breaker open; two passes release
// it to HalfOpen. A FakeClock makes the schedule run at once.
func ExampleMonitor() {
	clock := core.NewFakeClock(time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC))
	mgr, _ := core.NewManager(core.ManagerConfig{Clock: clock})
	mon, err := health.NewMonitor(health.MonitorConfig{Manager: mgr, Clock: clock})
	if err != nil {
		log.Fatal(err)
	}
	defer mon.Close(context.Background())

	var healthy atomic.Bool
	probe, _ := health.NewCustomProbe(health.CustomProbeConfig{Name: "db", Checker: health.CheckerFunc(func(context.Context) error {
		if !healthy.Load() {
			return errors.New("connection refused")
		}
		return nil
	})})
	if err := mon.Watch("orders", probe, health.WatchConfig{Interval: 10 * time.Second}); err != nil {
		log.Fatal(err)
	}
	ep, _ := mgr.Endpoint("orders")
	breaker := ep.Breaker()

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
	for _, st := range mon.Statuses() { // one per watched endpoint
		fmt.Println(breaker.State(), st.Endpoint, "healthy:", st.Healthy)
	}
	// Output:
	// ForcedOpen - held by health db: health check db failed 3 times: connection refused
	// ForcedOpen
	// HalfOpen orders healthy: true
}

// Watch an HTTP health endpoint every 30 seconds and let it drive the
// "api-service" breaker.
func ExampleMonitor_Watch() {
	mgr, _ := core.NewManager(core.ManagerConfig{})
	mon, _ := health.NewMonitor(health.MonitorConfig{Manager: mgr})
	defer mon.Close(context.Background())

	probe, err := health.NewHTTPProbe(health.HTTPProbeConfig{URL: "http://api.example.com/health"})
	if err != nil {
		log.Fatal(err)
	}
	if err := mon.Watch("api-service", probe, health.WatchConfig{Interval: 30 * time.Second}); err != nil {
		log.Fatal(err)
	}
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

func ExampleNewTCPProbe() {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	probe, _ := health.NewTCPProbe(health.TCPProbeConfig{Address: ln.Addr().String()})
	fmt.Println(strings.HasPrefix(probe.Name(), "tcp://"), probe.Check(context.Background()).OK)
	// Output: true true
}

func ExampleNewWebSocketProbe() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		<-c.CloseRead(r.Context()).Done() // answers pings and the close
	}))
	defer srv.Close()

	probe, _ := health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"})
	fmt.Println(probe.Check(context.Background()).OK)
	// Output: true
}

// A check of your own.
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

// A bad config names every bad field.
func ExampleNewHTTPProbe_configError() {
	_, err := health.NewHTTPProbe(health.HTTPProbeConfig{URL: "/health", MaxStatus: 700})
	var ce *core.ConfigError
	fmt.Println(errors.As(err, &ce), ce.Field)
	fmt.Println(err)
	// Output:
	// true health.HTTPProbeConfig.URL
	// bulwark: health.HTTPProbeConfig.URL = "/health" is invalid: must be an absolute http or https URL
	// bulwark: health.HTTPProbeConfig.MaxStatus = 700 is invalid: must be between 100 and 599 (0 means the default, 399)
}
