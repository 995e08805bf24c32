package grpcprobe_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/health/grpcprobe"
)

// A gRPC service watched through its standard health service, switched to
// NOT_SERVING and back, drives its breaker open and then to HalfOpen.
func TestMonitorGRPC(t *testing.T) {
	addr, hs := grpcServer(t)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	clock := core.NewFakeClock(time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC))
	mgr, err := core.NewManager(core.ManagerConfig{Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := health.NewMonitor(health.MonitorConfig{Manager: mgr, Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close(context.Background())
	sub := mgr.Bus().Subscribe(16)
	defer sub.Close()

	const every = 30 * time.Second
	probe := mk(t, grpcprobe.Config{Target: "http://" + addr, Timeout: 2 * time.Second})
	if err := mon.Watch("api-service", probe, health.WatchConfig{Interval: every}); err != nil {
		t.Fatal(err)
	}
	ep, _ := mgr.Endpoint("api-service")
	b := ep.Breaker()
	// settle waits for the check in flight to end and the next to be due.
	settle := func() {
		t.Helper()
		if !clock.WaitForTimers(1, 10*time.Second) {
			t.Fatal("the monitor never waited for its next check")
		}
	}
	tick := func() { t.Helper(); settle(); clock.Advance(every); settle() }
	settle()
	if st := mon.Statuses(); len(st) != 1 || st[0].Endpoint != "api-service" || !st[0].Healthy {
		t.Fatalf("serving server: statuses %+v", st)
	}

	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	for range 3 {
		tick()
	}
	if b.State() != events.ForcedOpen {
		t.Fatalf("state %v after 3 NOT_SERVING checks", b.State())
	}
	if r := b.Snapshot().Reason; !strings.Contains(r, "health check grpc://"+addr+" failed 3 times: health status NOT_SERVING") {
		t.Fatalf("reason %q", r)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	tick()
	tick()
	if b.State() != events.HalfOpen {
		t.Fatalf("state %v after 2 SERVING checks", b.State())
	}
	// The transitions went out on the bus, so alerts and the feed see them.
	var got []string
	for len(sub.C()) > 0 {
		sc := (<-sub.C()).(events.StateChange)
		got = append(got, sc.OldState.String()+">"+sc.NewState.String())
	}
	if strings.Join(got, " ") != "Closed>ForcedOpen ForcedOpen>HalfOpen" {
		t.Fatalf("transitions %v", got)
	}
}
