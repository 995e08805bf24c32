package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// syncInterval is the Redis store's default sync interval, which the
// example keeps.
const syncInterval = time.Second

// settingsView is the part of GET /admin/status/{endpoint} that says what
// an endpoint runs with.
type settingsView struct {
	Source   string
	Breaker  int    // breaker.failure_threshold
	Bulkhead int    // bulkhead.max_concurrent_requests
	Timeout  string // breaker.timeout
	State    string
	Total    int64
}

func (a *app) settings(endpoint string) settingsView {
	a.t.Helper()
	var s struct {
		Settings struct {
			Breaker struct {
				FailureThreshold int    `json:"failure_threshold"`
				Timeout          string `json:"timeout"`
			} `json:"breaker"`
			Bulkhead struct {
				MaxConcurrentRequests int `json:"max_concurrent_requests"`
			} `json:"bulkhead"`
		} `json:"settings"`
		SettingsSource string      `json:"settings_source"`
		Breaker        breakerView `json:"breaker"`
	}
	a.getJSON("/admin/status/"+url.PathEscape(endpoint), &s)
	return settingsView{
		Source: s.SettingsSource, Breaker: s.Settings.Breaker.FailureThreshold, Timeout: s.Settings.Breaker.Timeout,
		Bulkhead: s.Settings.Bulkhead.MaxConcurrentRequests,
		State:    s.Breaker.State, Total: s.Breaker.TotalRequests,
	}
}

// Two instances on one Redis: a settings change made on one is in force on
// the other within two sync intervals, leaves the breaker's state and
// counts alone, outlives a restart of both, and DELETE restores the file's
// settings on both.
func TestEndToEndSettingsChangeAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	redisURL := "redis://" + srv.Addr() + "/0"
	const ep = "GET /api/reports/{kind}"
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startApp(t, "a", dirA, "-traffic=false", "-redis-url", redisURL)
	b := startApp(t, "b", dirB, "-traffic=false", "-redis-url", redisURL)

	for range 5 {
		if code, _, body := b.get("/api/reports/daily"); code != http.StatusOK {
			t.Fatalf("b: GET /api/reports/daily: %d %s", code, body)
		}
	}
	b.control(ep, "force_open", "maintenance", "cluster")
	before := b.settings(ep)
	if before.Source != "file" || before.Breaker != 5 || before.Bulkhead != 4 || before.State != "ForcedOpen" || before.Total != 5 {
		t.Fatalf("b before the change: %+v, want the file's settings (5, 4), ForcedOpen, 5 requests", before)
	}

	code, _, body := a.do(http.MethodPut, "/admin/config/"+url.PathEscape(ep),
		`{"breaker":{"failure_threshold":9},"bulkhead":{"max_concurrent_requests":6}}`, true)
	if code != http.StatusOK {
		t.Fatalf("a: PUT /admin/config: %d %s", code, body)
	}
	var after settingsView
	took := wait.For(t, 2*syncInterval, "b to run with a's settings", func() bool {
		after = b.settings(ep)
		return after.Source == "runtime" && after.Breaker == 9 && after.Bulkhead == 6
	})
	t.Logf("b ran with the new settings %v after a's PUT answered (bound %v)", took.Round(time.Millisecond), 2*syncInterval)
	if after.State != before.State || after.Total != before.Total {
		t.Fatalf("b's breaker after the change: %s with %d requests, before %s with %d", after.State, after.Total, before.State, before.Total)
	}
	if after.Timeout != "15s" {
		t.Fatalf("b's breaker timeout after the change is %q, want the defaults' 15s", after.Timeout)
	}

	// A bad change names its field and changes nothing.
	code, _, body = a.do(http.MethodPut, "/admin/config/"+url.PathEscape(ep), `{"breaker":{"failure_threshold":-3}}`, true)
	var refusal settingsError
	if code != http.StatusBadRequest || json.Unmarshal(body, &refusal) != nil || len(refusal.Problems) != 1 || !strings.HasSuffix(refusal.Problems[0].Field, `"GET /api/reports/{kind}".breaker.failure_threshold`) {
		t.Fatalf("a: PUT with failure_threshold -3: %d %s, want 400 naming breaker.failure_threshold", code, body)
	}

	// Both restart: the change is still in force.
	a.stop()
	b.stop()
	a = startApp(t, "a (restarted)", dirA, "-traffic=false", "-redis-url", redisURL)
	b = startApp(t, "b (restarted)", dirB, "-traffic=false", "-redis-url", redisURL)
	for _, x := range []*app{a, b} {
		if s := x.settings(ep); s.Source != "runtime" || s.Breaker != 9 || s.Bulkhead != 6 {
			t.Fatalf("%s: %+v, want the runtime change still in force", x.name, s)
		}
	}
	if s := b.settings(ep); s.Total != before.Total {
		t.Fatalf("b's breaker after the restart has %d requests, want %d", s.Total, before.Total)
	}

	// DELETE on b: both are back on the file's settings.
	if code, _, body := b.do(http.MethodDelete, "/admin/config/"+url.PathEscape(ep), "", true); code != http.StatusOK {
		t.Fatalf("b: DELETE /admin/config: %d %s", code, body)
	}
	for _, x := range []*app{b, a} {
		wait.For(t, 2*syncInterval, x.name+" to be back on the file's settings", func() bool {
			s := x.settings(ep)
			return s.Source == "file" && s.Breaker == 5 && s.Bulkhead == 4
		})
	}
}

// settingsError is the body of a refused PUT /admin/config.
type settingsError struct {
	Error    string `json:"error"`
	Problems []struct {
		Field string `json:"field"`
	} `json:"problems"`
}
