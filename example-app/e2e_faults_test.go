package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// faultView is a running experiment as GET /admin/faults shows it.
type faultView struct {
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
	Origin   string `json:"origin"`
	Injected int64  `json:"injected"`
}

func (a *app) faults() []faultView {
	a.t.Helper()
	var body struct {
		Enabled bool        `json:"enabled"`
		Faults  []faultView `json:"faults"`
	}
	a.getJSON("/admin/faults", &body)
	if !body.Enabled {
		a.t.Fatalf("%s: fault injection is off", a.name)
	}
	return body.Faults
}

// Two instances on one Redis. An experiment started on one (50% 500s on an
// endpoint for 20s) runs on the other too: about half of its calls fail,
// counted as injected in its status and metrics, and its breaker opens on
// them. At the expiry the experiment ends on both, and the breaker closes.
func TestEndToEndFaultExperimentAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	redisURL := "redis://" + srv.Addr() + "/0"
	const ep = "GET /api/users/{id}"
	cfg := configWith(t, map[string]string{
		"# Each user (the X-User header)": `  "GET /api/users/{id}":
    breaker: {failure_threshold: 5, failure_rate_threshold: 50, min_requests_for_rate: 20, timeout: 2s, success_threshold: 2}

faults:
  max_duration: 1m

# Each user (the X-User header)`,
	})
	a := startApp(t, "a", t.TempDir(), "-config", cfg, "-traffic=false", "-redis-url", redisURL)
	b := startApp(t, "b", t.TempDir(), "-config", cfg, "-traffic=false", "-redis-url", redisURL)

	const length = 20 * time.Second
	code, _, body := a.do(http.MethodPost, "/admin/faults",
		`{"endpoint":"GET /api/users/{id}","percent":50,"status":500,"duration":"20s","reason":"e2e"}`, true)
	if code != http.StatusCreated {
		t.Fatalf("a: POST /admin/faults: %d %s", code, body)
	}
	started := time.Now()
	var f faultView
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	took := wait.For(t, 2*syncInterval, "b to run a's experiment", func() bool {
		fs := b.faults()
		return len(fs) == 1 && fs[0].ID == f.ID && fs[0].Origin != ""
	})
	t.Logf("b ran a's experiment %v after a's POST answered (bound %v)", took.Round(time.Millisecond), 2*syncInterval)

	// Calls to b while the experiment runs.
	var ok, injected, refused, tripped int
	for time.Since(started) < length-time.Second {
		code, hdr, _ := b.get("/api/users/" + strconv.Itoa(ok%100))
		switch {
		case code == http.StatusOK:
			ok++
		case code == http.StatusInternalServerError && hdr.Get("X-Bulwark-Fault") == f.ID:
			injected++
		case code == http.StatusServiceUnavailable:
			refused++
		default:
			t.Fatalf("b: %d during the experiment", code)
		}
		if tripped == 0 && b.breaker(ep).State == "Open" {
			tripped = ok + injected + refused
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The experiment chooses its calls before any other policy, the
	// breaker included: about half of all the calls get the fault, while
	// the breaker is open too (the others are then refused).
	share := float64(injected) / float64(ok+injected+refused)
	t.Logf("b during the experiment: %d answered 200, %d injected 500s (%.0f%% of the calls), %d refused by the open breaker; first open after %d calls",
		ok, injected, 100*share, refused, tripped)
	if share < 0.35 || share > 0.65 {
		t.Fatalf("b injected the fault into %.0f%% of its calls, want about half", 100*share)
	}
	if tripped == 0 || refused == 0 {
		t.Fatal("b's breaker never opened on the injected failures")
	}

	// Injected failures are counted apart, in status and metrics.
	var st struct {
		Breaker struct {
			Failed   int64 `json:"failed_requests"`
			Injected int64 `json:"injected_failures"`
		} `json:"breaker"`
	}
	b.getJSON("/admin/status/"+url.PathEscape(ep), &st)
	if st.Breaker.Injected == 0 || st.Breaker.Failed != 0 {
		t.Fatalf("b's status: %d injected, %d real failures; want injected only", st.Breaker.Injected, st.Breaker.Failed)
	}
	if v, ok := b.metric(`circuit_breaker_requests_injected_failures_total{endpoint="GET /api/users/{id}"}`); !ok || v == "0" {
		t.Fatalf("b's metrics: injected failures %q", v)
	}
	if v, _ := b.metric(`circuit_breaker_requests_failed_total{endpoint="GET /api/users/{id}"}`); v != "0" {
		t.Fatalf("b's metrics: real failures %q, want 0", v)
	}
	if v, ok := b.metric(`fault_injected_total{endpoint="GET /api/users/{id}",fault="status"}`); !ok || v == "0" {
		t.Fatalf("b's metrics: fault_injected_total %q", v)
	}

	// It ends on both at its expiry, and the breaker closes again.
	for _, x := range []*app{a, b} {
		wait.For(t, length+2*syncInterval-time.Since(started), x.name+" to end the experiment", func() bool { return len(x.faults()) == 0 })
	}
	t.Logf("ended on both %v after the start (duration %v)", time.Since(started).Round(100*time.Millisecond), length)
	wait.For(t, 10*time.Second, "b's breaker to close", func() bool {
		code, hdr, _ := b.get("/api/users/7")
		if hdr.Get("X-Bulwark-Fault") != "" {
			t.Fatalf("b injected a fault after the experiment ended")
		}
		return code == http.StatusOK && b.breaker(ep).State == "Closed"
	})
}
