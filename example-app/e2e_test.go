package main

// End-to-end tests: the example app built and run as a real process,
// driven over HTTP and its WebSocket feed, stopped with SIGTERM and started
// again; two instances sharing a private redis-server.

import (
	"context"
	"fmt"
	"github.com/bulwark-go/bulwark/internal/wait"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulwark-go/bulwark/internal/redistest"
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
	wait.For(t, 5*time.Second, "the quote requests open the outbound breaker", func() bool {
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

// maxPropagation is how soon a breaker change on one instance must show on
// the other.
const maxPropagation = time.Second

// TestEndToEndSharedStateAcrossInstances runs two apps sharing breaker
// state through a private redis-server. A breaker forced open on one, and a
// breaker tripped by traffic on one, show in the other's admin status
// within a second. With Redis killed both keep serving; once it is back
// they reconcile and share changes again.
func TestEndToEndSharedStateAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	redisURL := "redis://" + srv.Addr() + "/0"
	a := startApp(t, "A", t.TempDir(), "-redis-url", redisURL, "-upstream", "healthy", "-traffic=false")
	b := startApp(t, "B", t.TempDir(), "-redis-url", redisURL, "-upstream", "healthy", "-traffic=false")
	if a.urls["Shared state"] != redisURL || b.urls["Shared state"] != redisURL {
		t.Fatalf("banners show shared state %q and %q, want %s", a.urls["Shared state"], b.urls["Shared state"], redisURL)
	}

	// Transitions travel on a pub/sub channel (with a version check every
	// second as the fallback). Measure once both instances listen on it.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	bothSubscribed := func(when string) {
		t.Helper()
		const channel = "bulwark:transitions"
		wait.For(t, 30*time.Second, "both instances subscribed to "+channel+" "+when, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := rdb.PubSubNumSub(ctx, channel).Result()
			return err == nil && n[channel] == 2
		})
	}
	bothSubscribed("after start")

	feedA, feedB := dialFeed(t, a), dialFeed(t, b)
	for _, f := range []*feed{feedA, feedB} {
		if m := f.next(5 * time.Second); m.Type != "snapshot" {
			t.Fatalf("%s: first feed message is %q, want the snapshot", f.name, m.Type)
		}
	}
	bothClosed := func(when string) {
		t.Helper()
		for _, x := range []*app{a, b} {
			seenOn(t, x, "Closed "+when, func(v breakerView) bool { return v.State == "Closed" })
		}
	}
	bothClosed("at start")

	// 1. An operator's force_open on A goes cluster-wide.
	sent := time.Now()
	a.control(upstreamBreaker, "force_open", "e2e", "cluster")
	at, v := seenOn(t, b, "ForcedOpen after force_open on A", func(v breakerView) bool { return v.State == "ForcedOpen" })
	d := at.Sub(sent)
	t.Logf("propagation: force_open on A → ForcedOpen in B's /admin/status %v after the request was sent", d.Round(100*time.Microsecond))
	if !strings.Contains(v.Reason, "e2e") {
		t.Errorf("B's breaker reason %q does not carry the operator's reason", v.Reason)
	}
	if d > maxPropagation {
		t.Errorf("force_open took %v to reach B, want at most %v", d, maxPropagation)
	}
	if s := a.breaker(upstreamBreaker); s.State != "ForcedOpen" {
		t.Errorf("A's own breaker is %s after its force_open", s.State)
	}
	a.control(upstreamBreaker, "reset", "e2e", "cluster")
	bothClosed("after reset on A")

	// 2. Traffic trips A's breaker: its upstream fails, the quote requests
	// open the breaker, and B follows.
	a.setUpstream("failing")
	requests := 0
	var tripped breakerView
	wait.For(t, 5*time.Second, "quote requests open A's outbound breaker", func() bool {
		requests++
		if code, _, body := a.get("/api/quotes/ACME"); code != http.StatusBadGateway && code != http.StatusServiceUnavailable {
			t.Fatalf("A: GET /api/quotes/ACME on a failing upstream: %d %s", code, body)
		}
		tripped = a.breaker(upstreamBreaker)
		return tripped.State != "Closed"
	})
	if tripped.State != "Open" || !strings.Contains(tripped.Reason, "failure threshold") {
		t.Fatalf("A's breaker after %d failing quote requests: %s (%s), want Open by the failure threshold", requests, tripped.State, tripped.Reason)
	}
	at, v = seenOn(t, b, "Open after A tripped", func(v breakerView) bool { return v.State == "Open" })
	d = at.Sub(tripped.LastStateChange)
	t.Logf("propagation: traffic trip on A (%d quote requests) → Open in B's /admin/status %v after A's transition", requests, d.Round(100*time.Microsecond))
	if d > maxPropagation {
		t.Errorf("A's trip took %v to reach B, want at most %v", d, maxPropagation)
	}
	if diff := v.OpenUntil.Sub(tripped.OpenUntil).Abs(); diff > 5*time.Millisecond {
		t.Errorf("B is open until %s, A until %s: want the cluster's one end", v.OpenUntil, tripped.OpenUntil)
	}
	a.setUpstream("healthy")
	a.control(upstreamBreaker, "reset", "e2e", "cluster")
	bothClosed("after the second reset on A")

	// 3. Redis dies: both keep serving on local state.
	serving := startServing(a, b)
	srv.Kill()
	killed := time.Now()
	for _, f := range []*feed{feedA, feedB} {
		f.waitFor(15*time.Second, "store_status degraded", func(m feedMsg) bool {
			return m.Type == "store_status" && m.Status == "degraded"
		})
		t.Logf("%s reported the store degraded %v after Redis was killed", f.name, time.Since(killed).Round(time.Millisecond))
	}
	for _, x := range []*app{a, b} {
		// The outbound path does not wait for Redis either.
		if code, _, body := x.get("/api/quotes/ACME"); code != http.StatusOK {
			t.Errorf("%s: GET /api/quotes/ACME with Redis down: %d %s", x.name, code, body)
		}
	}
	// Serve through an outage of a couple of seconds, long enough for the
	// stores' reconnection attempts to back off.
	const outage = 2 * time.Second
	wait.For(t, 10*time.Second, "100 requests to each instance and a 2s outage", func() bool {
		return serving.minCount() >= 100 && time.Since(killed) >= outage
	})

	// 4. Redis is back (empty): both reconnect, reconcile and share again.
	srv.Restart()
	restarted := time.Now()
	for _, f := range []*feed{feedA, feedB} {
		f.waitFor(30*time.Second, "store_status recovered", func(m feedMsg) bool {
			return m.Type == "store_status" && m.Status == "recovered"
		})
		t.Logf("%s reported the store recovered %v after Redis restarted", f.name, time.Since(restarted).Round(time.Millisecond))
	}
	t.Logf("Redis was down for %v", restarted.Sub(killed).Round(time.Millisecond))
	bothSubscribed("after Redis restarted")
	serving.finish(t)

	sent = time.Now()
	b.control(upstreamBreaker, "force_open", "e2e after the Redis restart", "cluster")
	at, _ = seenOn(t, a, "ForcedOpen after force_open on B", func(v breakerView) bool { return v.State == "ForcedOpen" })
	d = at.Sub(sent)
	t.Logf("propagation: after the Redis restart, force_open on B → ForcedOpen in A's /admin/status %v after the request was sent", d.Round(100*time.Microsecond))
	if d > maxPropagation {
		t.Errorf("force_open on B took %v to reach A, want at most %v", d, maxPropagation)
	}
	sent = time.Now()
	a.control(upstreamBreaker, "reset", "e2e", "cluster")
	at, _ = seenOn(t, b, "Closed after reset on A", func(v breakerView) bool { return v.State == "Closed" })
	if d := at.Sub(sent); d > maxPropagation {
		t.Errorf("reset on A took %v to reach B, want at most %v", d, maxPropagation)
	}

	feedA.close()
	feedB.close()
	a.stop()
	b.stop()
}

// seenOn polls x's GET /admin/status until the outbound breaker there
// matches, and returns when it first did and the breaker then. It fails
// the test after 5s.
func seenOn(t *testing.T, x *app, what string, match func(breakerView) bool) (time.Time, breakerView) {
	t.Helper()
	var v breakerView
	wait.For(t, 5*time.Second, x.name+": breaker "+what, func() bool {
		v = x.breakerInStatus(upstreamBreaker)
		return match(v)
	})
	return time.Now(), v
}

// serving sends GET /api/users/1 to each app in turn, in the background,
// and counts the answers.
type serving struct {
	apps []*app
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	counts  map[string]map[int]int // app → status → count
	slowest map[string]time.Duration
	errs    []string
}

func startServing(apps ...*app) *serving {
	s := &serving{apps: apps, stop: make(chan struct{}), done: make(chan struct{}), counts: map[string]map[int]int{}, slowest: map[string]time.Duration{}}
	for _, a := range apps {
		s.counts[a.name] = map[int]int{}
	}
	go s.run()
	return s
}

func (s *serving) run() {
	defer close(s.done)
	for {
		for _, a := range s.apps {
			select {
			case <-s.stop:
				return
			default:
			}
			start := time.Now()
			resp, err := httpClient.Get(a.base + "/api/users/1")
			took := time.Since(start)
			s.mu.Lock()
			s.slowest[a.name] = max(s.slowest[a.name], took)
			if err != nil {
				s.errs = append(s.errs, fmt.Sprintf("%s: %v", a.name, err))
			} else {
				_ = resp.Body.Close()
				s.counts[a.name][resp.StatusCode]++
			}
			s.mu.Unlock()
		}
	}
}

// minCount is the fewest answers any app has given.
func (s *serving) minCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	least := -1
	for _, byStatus := range s.counts {
		n := 0
		for _, c := range byStatus {
			n += c
		}
		if least < 0 || n < least {
			least = n
		}
	}
	return least
}

// finish stops the requests and requires every one to have been a 200.
func (s *serving) finish(t *testing.T) {
	t.Helper()
	close(s.stop)
	<-s.done
	for _, a := range s.apps {
		t.Logf("%s answered GET /api/users/1 through the Redis outage and recovery: %v (status: count), slowest %v",
			a.name, s.counts[a.name], s.slowest[a.name].Round(10*time.Microsecond))
		for code, n := range s.counts[a.name] {
			if code != http.StatusOK {
				t.Errorf("%s answered %d %d times, want only 200", a.name, code, n)
			}
		}
	}
	if len(s.errs) > 0 {
		t.Errorf("%d requests failed, first: %s", len(s.errs), s.errs[0])
	}
}
