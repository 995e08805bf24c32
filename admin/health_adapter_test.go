package admin_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
)

// healthSource is the adapter the HealthStatus documentation shows, kept
// compiling against the health package.
func healthSource(mon *health.Monitor) admin.HealthSource {
	return admin.HealthFunc(func() []admin.HealthStatus {
		var out []admin.HealthStatus
		for _, s := range mon.Statuses() {
			out = append(out, admin.HealthStatus{Endpoint: s.Endpoint, Probe: s.Probe,
				Healthy: s.Healthy, Last: admin.HealthResultOf(s.Last.OK, s.Last.Latency, s.Last.Err, s.Last.Time),
				ConsecutiveFailures: s.ConsecutiveFailures, ConsecutiveSuccesses: s.ConsecutiveSuccesses,
				Checks: s.Checks, Failures: s.Failures, ForcedOpen: s.ForcedOpen})
		}
		return out
	})
}

func TestHealthMonitorAdapter(t *testing.T) {
	m := newManager(t, core.NewFakeClock(seedTime))
	mon, err := health.NewMonitor(health.MonitorConfig{Breakers: m})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close(context.Background())
	probe, err := health.NewCustomProbe(health.CustomProbeConfig{Name: "custom://db", Checker: health.CheckerFunc(func(context.Context) error {
		return errors.New("connection refused")
	})})
	if err != nil {
		t.Fatal(err)
	}
	if err := mon.Watch("GET /users", probe, health.WatchConfig{Interval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, admin.Config{Manager: m, Health: healthSource(mon)})
	waitFor(t, "a failed check", func() bool {
		var st admin.Status
		do(t, "GET", f.srv.URL+"/status", "", "").json(t, &st)
		return len(st.Health) == 1 && st.Health[0].ConsecutiveFailures > 0 &&
			st.Health[0].Last.Error == "connection refused" && st.Health[0].Probe == "custom://db"
	})
}
