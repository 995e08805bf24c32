package main

// End-to-end tests: the example app built and run as a real process,
// driven over HTTP and its WebSocket feed, stopped with SIGTERM and started
// again.

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestEndToEndBreakerTripsAndSurvivesRestart runs one app whose upstream
// fails: a couple of quote requests open the outbound breaker, which the
// admin status, the WebSocket feed and the metrics all show; after a
// SIGTERM and a start on the same data folder the breaker is Open again
// with what was left of its open time.
//
// The app's health monitor also watches the failing upstream: it checks
// every 2s from start-up and forces the breaker open after 3 failed checks,
// so about 4s after start. The test trips the breaker by traffic well
// before that (in a few hundred milliseconds). If the monitor still gets
// there first on a slow machine, the breaker is ForcedOpen, which the app's
// shutdown hands back (to HalfOpen) on purpose, so there is no Open to
// restore; the test then says so and tries again with a fresh process.
func TestEndToEndBreakerTripsAndSurvivesRestart(t *testing.T) {
	const attempts = 3
	for i := 1; i <= attempts; i++ {
		raced := tripAndRestart(t)
		if raced == "" {
			return
		}
		t.Logf("attempt %d/%d: %s; trying again with a fresh process", i, attempts, raced)
	}
	t.Fatalf("the health monitor forced the breaker open before the test could trip it by traffic in %d attempts", attempts)
}

// tripAndRestart is one attempt. It returns why it could not decide, when
// the health monitor got ahead of the test, or "" when it passed.
func tripAndRestart(t *testing.T) (raced string) {
	dataDir := t.TempDir()
	first := startApp(t, "app", dataDir, "-upstream", "failing", "-traffic=false")
	started := time.Now()

	// The dashboard and the metrics answer.
	code, hdr, body := first.get("/admin/")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "<title>Bulwark") {
		t.Fatalf("GET /admin/: %d %q, want 200 and the dashboard page:\n%.300s", code, hdr.Get("Content-Type"), body)
	}
	if first.urls["Metrics"] != first.base+"/metrics" {
		t.Fatalf("banner shows metrics at %q", first.urls["Metrics"])
	}
	if _, ok := first.metric(`circuit_breaker_state{endpoint="upstream:quotes"}`); !ok {
		t.Fatal("GET /metrics has no circuit_breaker_state for upstream:quotes")
	}
	if b := first.breaker(upstreamBreaker); b.State != "Closed" {
		t.Fatalf("breaker %s before any traffic, want Closed (%s)", b.State, b.Reason)
	}

	// Follow the feed before driving.
	feed := dialFeed(t, first)
	if m := feed.next(5 * time.Second); m.Type != "snapshot" {
		t.Fatalf("first feed message is %q, want the snapshot: %.200s", m.Type, m.raw)
	}

	// Each quote request makes up to 3 attempts on the upstream, and 5
	// consecutive failures open the breaker: two requests should do.
	requests := 0
	var b breakerView
	eventually(t, 5*time.Second, 0, "the quote requests open the outbound breaker", func() bool {
		requests++
		code, _, body := first.get("/api/quotes/ACME")
		// 502 while the upstream's failures get through, 503 once the
		// breaker rejects (no cached quote to fall back on).
		if code != http.StatusBadGateway && code != http.StatusServiceUnavailable {
			t.Fatalf("GET /api/quotes/ACME on a failing upstream: %d %s", code, body)
		}
		b = first.breaker(upstreamBreaker)
		return b.State != "Closed"
	})
	t.Logf("the breaker left Closed after %d quote requests, %v after the app was ready: %s (%s)",
		requests, time.Since(started).Round(time.Millisecond), b.State, b.Reason)
	if b.State == "ForcedOpen" {
		first.kill()
		return "the health monitor forced the breaker open before traffic tripped it"
	}
	if b.State != "Open" || !strings.Contains(b.Reason, "failure threshold") || b.RetryAfterSeconds <= 0 {
		t.Fatalf("breaker after the failures: %+v, want Open by the failure threshold with a retry-after", b)
	}

	// The full status lists it (Open, or ForcedOpen if the monitor has
	// acted since: both reject every call).
	if s := first.breakerInStatus(upstreamBreaker); s.State != "Open" && s.State != "ForcedOpen" {
		t.Fatalf("/admin/status shows the breaker %s", s.State)
	}
	// The feed carried the transition.
	m := feed.waitFor(5*time.Second, "state_change of upstream:quotes", func(m feedMsg) bool {
		return m.Type == "state_change" && m.Endpoint == upstreamBreaker
	})
	if m.OldState != "Closed" || m.NewState != "Open" || !strings.Contains(m.Reason, "failure threshold") {
		t.Fatalf("feed: %s, want Closed → Open by the failure threshold", m.raw)
	}
	// The metrics read 1 (Open; ForcedOpen reads 1 too).
	if v, _ := first.metric(`circuit_breaker_state{endpoint="upstream:quotes"}`); v != "1" {
		t.Fatalf("circuit_breaker_state{endpoint=\"upstream:quotes\"} = %q, want 1", v)
	}

	// Restart on the same data folder.
	before := first.breaker(upstreamBreaker)
	if before.State == "ForcedOpen" {
		first.kill()
		return "the health monitor forced the breaker open before the restart"
	}
	feed.close()
	first.stop()
	stopped := time.Now()

	second := startApp(t, "app (restarted)", dataDir, "-upstream", "failing", "-traffic=false")
	after := second.breaker(upstreamBreaker)
	t.Logf("before the restart: %s, %ds left (open until %s); after: %s, %ds left (%s), %v after SIGTERM",
		before.State, before.RetryAfterSeconds, before.OpenUntil.Format(time.RFC3339Nano),
		after.State, after.RetryAfterSeconds, after.Reason, time.Since(stopped).Round(time.Millisecond))
	switch {
	case after.State == "HalfOpen" && strings.Contains(after.Reason, "released"):
		// The monitor forced it open between the last look and the
		// shutdown, which released it.
		second.kill()
		return "the health monitor forced the breaker open just before the restart"
	case after.State == "ForcedOpen":
		second.kill()
		return "the restarted app's health monitor forced the breaker open before the test read it"
	}
	if after.State != "Open" || !strings.HasPrefix(after.Reason, "restored") {
		t.Fatalf("after the restart the breaker is %s (%q), want Open, restored", after.State, after.Reason)
	}
	if after.RetryAfterSeconds <= 0 || after.RetryAfterSeconds > before.RetryAfterSeconds {
		t.Fatalf("after the restart retry_after_seconds = %d, want in (0, %d], what was left before",
			after.RetryAfterSeconds, before.RetryAfterSeconds)
	}
	if d := after.OpenUntil.Sub(before.OpenUntil).Abs(); d > time.Millisecond {
		t.Fatalf("after the restart open until %s, before %s: want the same end", after.OpenUntil, before.OpenUntil)
	}
	if v, _ := second.metric(`circuit_breaker_state{endpoint="upstream:quotes"}`); v != "1" {
		t.Fatalf("after the restart circuit_breaker_state = %q, want 1", v)
	}
	second.stop()
	return ""
}
