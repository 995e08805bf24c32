package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// healthInterval is the example's health-check interval
// (bulwark.example.yaml).
const healthInterval = 2 * time.Second

// A health monitor holds the upstream's breaker open, and its process is
// killed. Started again with a healthy upstream, the app takes its hold
// over and releases it: within three check intervals the breaker closes
// and the quote route answers.
func TestEndToEndHoldOfAKilledMonitorEnds(t *testing.T) {
	dir := t.TempDir()
	a := startApp(t, "a", dir, "-upstream", "failing", "-traffic=false")
	wait.For(t, 10*healthInterval, "the monitor to hold the upstream's breaker", func() bool {
		b := a.breaker(upstreamBreaker)
		return b.State == "ForcedOpen" && b.HeldBy != ""
	})
	a.kill()

	b := startApp(t, "b", dir, "-upstream", "healthy", "-traffic=false")
	if got := b.breaker(upstreamBreaker); got.State != "ForcedOpen" {
		t.Logf("after the restart the breaker is %s (%s)", got.State, got.Reason)
	}
	// Only the status is polled: quote requests refused meanwhile would
	// count against the quote route's own breaker.
	took := wait.For(t, 3*healthInterval, "the monitor to release the breaker", func() bool {
		return b.breaker(upstreamBreaker).State != "ForcedOpen"
	})
	t.Logf("released %v after the restart", took.Round(time.Millisecond))
	for i := range 2 { // the half-open breaker's probes close it
		if code, _, body := b.get("/api/quotes/ACME"); code != http.StatusOK {
			t.Fatalf("quote request %d after the release: %d %s", i+1, code, body)
		}
	}
	if got := b.breaker(upstreamBreaker); got.State != "Closed" {
		t.Fatalf("after two good calls the breaker is %+v, want Closed", got)
	}
}

// The same with two instances sharing a Redis: the one whose monitor holds
// the breaker for the cluster is killed; the survivor's breaker is released
// once the dead monitor's lease lapses: its lease (three intervals plus the
// check timeout, 7s) and a sync interval or two.
func TestEndToEndHoldOfAKilledInstanceLapses(t *testing.T) {
	srv := redistest.Start(t)
	url := "redis://" + srv.Addr() + "/0"
	a := startApp(t, "a", t.TempDir(), "-upstream", "failing", "-traffic=false", "-redis-url", url)
	b := startApp(t, "b", t.TempDir(), "-upstream", "healthy", "-traffic=false", "-redis-url", url)
	wait.For(t, 10*healthInterval, "a's monitor to hold the breaker for the cluster", func() bool {
		x := b.breaker(upstreamBreaker)
		return x.State == "ForcedOpen" && strings.Contains(x.HeldBy, "health")
	})
	// b's own checks pass, but the hold is a's: b leaves it alone.
	time.Sleep(2 * healthInterval) // a steady state to observe, not a timeout
	if x := b.breaker(upstreamBreaker); x.State != "ForcedOpen" {
		t.Fatalf("b released a's hold while a lives: %+v", x)
	}
	a.kill()
	killed := time.Now()
	const bound = 12 * time.Second
	wait.For(t, bound, "b's breaker to be released after a died", func() bool {
		return b.breaker(upstreamBreaker).State != "ForcedOpen"
	})
	t.Logf("released %v after a was killed (bound %v)", time.Since(killed).Round(time.Millisecond), bound)
	wait.For(t, 10*time.Second, "b's quotes to answer", func() bool {
		code, _, _ := b.get("/api/quotes/ACME")
		return code == http.StatusOK
	})
}

// webhookReceiver counts the alerts posted to it.
type webhookReceiver struct {
	mu     sync.Mutex
	status []string // "firing" or "resolved", in order
	ids    []string
}

func (w *webhookReceiver) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	var p struct {
		Status string `json:"status"`
		Alerts []struct {
			Fingerprint string            `json:"fingerprint"`
			Labels      map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if json.NewDecoder(r.Body).Decode(&p) != nil || len(p.Alerts) == 0 || p.Alerts[0].Labels["endpoint"] != "GET /api/users/{id}" {
		return
	}
	w.mu.Lock()
	w.status = append(w.status, p.Status)
	w.ids = append(w.ids, p.Alerts[0].Fingerprint)
	w.mu.Unlock()
}

func (w *webhookReceiver) seen() ([]string, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.status...), append([]string(nil), w.ids...)
}

// configWith writes the example's configuration with extra sections laid
// in place of its alerts section, and returns the file's path.
func configWith(t *testing.T, replace map[string]string) string {
	t.Helper()
	cfg := string(defaultConfig)
	for old, repl := range replace {
		if !strings.Contains(cfg, old) {
			t.Fatalf("the example configuration has no %q", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	p := filepath.Join(t.TempDir(), "bulwark.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A breaker open when the app stops comes back open, and its alert, which
// fired once, does not fire again; closing it resolves that same alert.
func TestEndToEndRestoredOpenBreakerAlertsOnce(t *testing.T) {
	rx := &webhookReceiver{}
	hook := httptest.NewServer(rx)
	defer hook.Close()
	cfg := configWith(t, map[string]string{"alerts:\n  log: true\n": "alerts:\n  log: true\n  webhook: {url: \"" + hook.URL + "\"}\n"})
	dir := t.TempDir()
	const ep = "GET /api/users/{id}"
	a := startApp(t, "a", dir, "-config", cfg, "-traffic=false")
	a.get("/api/users/1")
	a.control(ep, "force_open", "maintenance", "local")
	wait.For(t, 5*time.Second, "the alert to fire", func() bool { s, _ := rx.seen(); return len(s) == 1 })
	a.stop()

	b := startApp(t, "b", dir, "-config", cfg, "-traffic=false")
	if got := b.breaker(ep); got.State != "ForcedOpen" {
		t.Fatalf("after the restart: %+v", got)
	}
	time.Sleep(time.Second) // a second alert would be on its way by now; none may come
	if s, _ := rx.seen(); len(s) != 1 {
		t.Fatalf("the webhook got %v after the restart, want the one alert", s)
	}
	b.control(ep, "reset", "done", "local")
	wait.For(t, 5*time.Second, "the alert to resolve", func() bool { s, _ := rx.seen(); return len(s) == 2 })
	status, ids := rx.seen()
	if status[0] != "firing" || status[1] != "resolved" || ids[0] != ids[1] {
		t.Fatalf("webhook saw %v with IDs %v: want one alert fired, then the same resolved", status, ids)
	}
}

// A breaker tripped by traffic and restored from the file is in status and
// metrics before any request, and once its open time passes it reads
// HalfOpen without any traffic. (No health monitor here: it would hold the
// breaker instead.)
func TestEndToEndRestoredBreakersShowAtStart(t *testing.T) {
	y := string(defaultConfig)
	health := y[strings.Index(y, "    health:\n") : strings.Index(y, "\n\n# Each user")+1]
	cfg := configWith(t, map[string]string{"    timeout: 15s": "    timeout: 4s", health: ""})
	dir := t.TempDir()
	a := startApp(t, "a", dir, "-config", cfg, "-upstream", "failing", "-traffic=false")
	wait.For(t, 5*time.Second, "quote requests to open the outbound breaker", func() bool {
		a.get("/api/quotes/ACME")
		return a.breaker(upstreamBreaker).State == "Open"
	})
	a.stop()

	b := startApp(t, "b", dir, "-config", cfg, "-upstream", "failing", "-traffic=false")
	got := b.breakerInStatus(upstreamBreaker)
	if got.State != "Open" || !strings.HasPrefix(got.Reason, "restored") || got.TotalRequests == 0 {
		t.Fatalf("status before any request: %+v, want Open, restored, with its counts", got)
	}
	if v, ok := b.metric(`circuit_breaker_state{endpoint="upstream:quotes"}`); !ok || v != "1" {
		t.Fatalf("circuit_breaker_state before any request = %q (%v), want 1", v, ok)
	}
	wait.For(t, 6*time.Second, "the breaker to read HalfOpen without traffic", func() bool {
		return b.breakerInStatus(upstreamBreaker).State == "HalfOpen"
	})
	if v, _ := b.metric(`circuit_breaker_state{endpoint="upstream:quotes"}`); v != "2" {
		t.Fatalf("circuit_breaker_state = %s once the open time passed, want 2 (HalfOpen)", v)
	}
}
