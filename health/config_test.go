package health_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/health/internal/probetest"
)

// Every constructor reports every bad field of its config as a
// *core.ConfigError naming the field's full path.
func TestConfigErrors(t *testing.T) {
	var nilFunc health.CheckerFunc
	var nilChecker *switchChecker
	mgr, err := core.NewManager(core.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	mon, err := health.NewMonitor(health.MonitorConfig{Manager: mgr})
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close(context.Background())
	probe := custom(t, "p", okChecker)
	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"http empty", err2(health.NewHTTPProbe(health.HTTPProbeConfig{})), []string{"health.HTTPProbeConfig.URL"}},
		{"http scheme", err2(health.NewHTTPProbe(health.HTTPProbeConfig{URL: "ftp://x/"})), []string{"health.HTTPProbeConfig.URL"}},
		{"http relative", err2(health.NewHTTPProbe(health.HTTPProbeConfig{URL: "/health"})), []string{"health.HTTPProbeConfig.URL"}},
		{"http unparsable", err2(health.NewHTTPProbe(health.HTTPProbeConfig{URL: "http://[::1"})), []string{"health.HTTPProbeConfig.URL"}},
		{"http every field", err2(health.NewHTTPProbe(health.HTTPProbeConfig{
			URL: "x", Method: "GE T", MinStatus: 99, MaxStatus: 600, Timeout: -time.Second,
		})), []string{
			"health.HTTPProbeConfig.URL", "health.HTTPProbeConfig.Method", "health.HTTPProbeConfig.MinStatus",
			"health.HTTPProbeConfig.MaxStatus", "health.HTTPProbeConfig.Timeout",
		}},
		{"http range upside down", err2(health.NewHTTPProbe(health.HTTPProbeConfig{URL: "http://x/", MinStatus: 400})), []string{"health.HTTPProbeConfig.MinStatus"}},
		{"http timeout too long", err2(health.NewHTTPProbe(health.HTTPProbeConfig{URL: "http://x/", Timeout: 2 * time.Hour})), []string{"health.HTTPProbeConfig.Timeout"}},
		{"tcp empty", err2(health.NewTCPProbe(health.TCPProbeConfig{})), []string{"health.TCPProbeConfig.Address"}},
		{"tcp no port", err2(health.NewTCPProbe(health.TCPProbeConfig{Address: "localhost:", Timeout: time.Microsecond})), []string{
			"health.TCPProbeConfig.Address", "health.TCPProbeConfig.Timeout",
		}},
		{"tcp host only", err2(health.NewTCPProbe(health.TCPProbeConfig{Address: "localhost"})), []string{"health.TCPProbeConfig.Address"}},
		{"ws empty", err2(health.NewWebSocketProbe(health.WebSocketProbeConfig{})), []string{"health.WebSocketProbeConfig.URL"}},
		{"ws scheme", err2(health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: "tcp://h:1", Timeout: -1})), []string{
			"health.WebSocketProbeConfig.URL", "health.WebSocketProbeConfig.Timeout",
		}},
		{"ws no host", err2(health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: "ws:///x"})), []string{"health.WebSocketProbeConfig.URL"}},
		{"custom empty", err2(health.NewCustomProbe(health.CustomProbeConfig{})), []string{
			"health.CustomProbeConfig.Name", "health.CustomProbeConfig.Checker",
		}},
		{"custom nil func", err2(health.NewCustomProbe(health.CustomProbeConfig{Name: "db", Checker: nilFunc, Timeout: -1})), []string{
			"health.CustomProbeConfig.Checker", "health.CustomProbeConfig.Timeout",
		}},
		{"custom typed nil", err2(health.NewCustomProbe(health.CustomProbeConfig{Name: "db", Checker: nilChecker})), []string{"health.CustomProbeConfig.Checker"}},
		{"monitor empty", err2(health.NewMonitor(health.MonitorConfig{})), []string{"health.MonitorConfig.Manager"}},
		{"monitor typed nils", err2(health.NewMonitor(health.MonitorConfig{Manager: (*core.Manager)(nil), Clock: (*core.FakeClock)(nil)})), []string{
			"health.MonitorConfig.Manager", "health.MonitorConfig.Clock",
		}},
		{"watch every field", mon.Watch("x", nil, health.WatchConfig{
			Interval: time.Microsecond, FailureThreshold: -1, SuccessThreshold: 1001, Timeout: -1, History: 10_001,
		}), []string{
			"health.WatchConfig.Interval", "health.WatchConfig.FailureThreshold", "health.WatchConfig.SuccessThreshold",
			"health.WatchConfig.Timeout", "health.WatchConfig.History", "health.Monitor.Watch(probe)",
		}},
		{"watch too long", mon.Watch("x", probe, health.WatchConfig{Interval: 25 * time.Hour, Timeout: 2 * time.Hour}), []string{
			"health.WatchConfig.Interval", "health.WatchConfig.Timeout",
		}},
		{"watch typed nil probe", mon.Watch("x", (*panicPtrProbe)(nil), health.WatchConfig{}), []string{"health.Monitor.Watch(probe)"}},
	} {
		t.Run(tc.name, func(t *testing.T) { probetest.ConfigFields(t, tc.err, tc.want...) })
	}

	// The zero value of every optional field is valid.
	for _, err := range []error{
		err2(health.NewHTTPProbe(health.HTTPProbeConfig{URL: "http://x/"})),
		err2(health.NewHTTPProbe(health.HTTPProbeConfig{URL: "http://x/", MinStatus: 100, MaxStatus: 599, Method: http.MethodHead, Timeout: time.Hour})),
		err2(health.NewTCPProbe(health.TCPProbeConfig{Address: "[::1]:1", Timeout: time.Millisecond})),
		err2(health.NewWebSocketProbe(health.WebSocketProbeConfig{URL: "https://x/ws"})),
		err2(health.NewCustomProbe(health.CustomProbeConfig{Name: "db", Checker: okChecker})),
	} {
		if err != nil {
			t.Errorf("valid config refused: %v", err)
		}
	}
}

func err2[T any](_ T, err error) error { return err }

type panicPtrProbe struct{}

func (*panicPtrProbe) Name() string                        { return "nil" }
func (*panicPtrProbe) Check(context.Context) health.Result { panic("unreachable") }
