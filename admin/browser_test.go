package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/bulwark-go/bulwark/events"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// chromium finds a Chromium or Chrome binary. Without one the browser test
// skips, except under CI=true, where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no Chromium found (install the chromium package); the browser test must run under CI")
	}
	t.Skip("no Chromium found: install it (apt-get install chromium) to run the dashboard browser test")
	return ""
}

// scene is a service in a few states: a busy closed endpoint, an open one,
// one half-open, one held open by a failing health check, with bulkheads,
// SLOs, alerts, the per-user bulkhead's top list, runtime settings, and
// traffic flowing.
type scene struct {
	m        *core.Manager
	settings *fakeSettings
	srv      *httptest.Server
	stop     func()
}

func newScene(t *testing.T) *scene {
	t.Helper()
	slo := &core.SLOConfig{TargetSuccessRate: 0.99, Window: time.Minute}
	m, err := core.NewManager(core.ManagerConfig{
		Defaults: core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 1000, Timeout: 45 * time.Second}},
		Endpoints: map[string]core.EndpointConfig{
			"GET /users/{id}": {Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 50, MaxQueueSize: 10}, SLO: slo},
			"POST /orders":    {Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 20, MaxQueueSize: 10}, SLO: slo},
			"GET /checkout":   {Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 40, MaxQueueSize: 10}, SLO: slo},
			"GET /reports": {SLO: slo, RateLimit: &core.RateLimitConfig{Rate: 50, Burst: 50},
				Adaptive: &core.AdaptiveConfig{MinLimit: 4, MaxLimit: 40, InitialLimit: 8}},
		},
		PerUser: &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 10, MaxQueueSize: core.NoQueue}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &scene{m: m, settings: newFakeSettings(m)}
	am, err := alert.NewManager(alert.ManagerConfig{Bus: m.Bus(), Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	ep := func(name string) *core.Endpoint {
		e, err := m.Endpoint(name)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	var guards []core.Guard
	for name, held := range map[string]int{"GET /users/{id}": 21, "POST /orders": 19, "GET /checkout": 6} {
		for range held {
			g, err := ep(name).Bulkhead().TryAcquire()
			if err != nil {
				t.Fatal(err)
			}
			guards = append(guards, g)
		}
	}
	for range 3 {
		p, err := ep("GET /reports").Adaptive().TryAcquire(0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Done(core.Success, time.Millisecond) })
	}
	for range 52 {
		_ = ep("GET /reports").RateLimiter().Allow() // 50 allowed, 2 refused
	}
	for user, held := range map[string]int{"acme-corp": 10, "globex-ci": 7, "user-48213": 4, "initech": 3, "user-10077": 2} {
		for range held {
			g, err := m.PerUser().TryAcquire(user)
			if err != nil {
				t.Fatal(err)
			}
			guards = append(guards, g)
		}
	}

	mon, err := health.NewMonitor(health.MonitorConfig{Manager: m, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	watch := func(endpoint, probe string, fail error) {
		p, err := health.NewCustomProbe(health.CustomProbeConfig{Name: probe, Checker: health.CheckerFunc(func(context.Context) error { return fail })})
		if err != nil {
			t.Fatal(err)
		}
		if err := mon.Watch(endpoint, p, health.WatchConfig{Interval: 200 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	watch("GET /inventory", "tcp://inventory-db:5432", errors.New("dial tcp 10.0.4.17:5432: connect: connection refused"))
	watch("GET /users/{id}", "http://users-svc/healthz", nil)
	watch("POST /orders", "grpc://orders-svc:9090", nil)

	h, err := admin.New(admin.Config{
		Manager: m, Token: testToken, Health: mon, Alerts: am, Settings: s.settings,
		SnapshotInterval: 500 * time.Millisecond, Logger: discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", h)) // the page must work under a prefix
	s.srv = httptest.NewServer(mux)

	br := func(name string) *core.Breaker { return ep(name).Breaker() }
	// POST /orders fails until its failure rate opens it.
	orders := ep("POST /orders")
	for i := 0; orders.Breaker().State() == events.Closed && i < 100; i++ {
		p, err := orders.Breaker().Allow()
		if err == nil {
			fail := i%5 != 0
			p.Report(map[bool]core.Outcome{true: core.Failure, false: core.Success}[fail], 30*time.Millisecond)
			orders.SLO().Record(!fail)
		}
	}
	// GET /reports has spent half its error budget: 5 failures in 1,000
	// calls, against 1%.
	reports := ep("GET /reports").SLO()
	for i := range 1000 {
		reports.Record(i%200 != 0)
	}
	core.ReplicationOf(br("GET /search")).ApplyRemote(core.Snapshot{State: events.HalfOpen, Reason: "open timeout elapsed"})
	br("GET /legacy/export")
	br("GET /checkout")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { // traffic
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		rnd := rand.New(rand.NewPCG(1, 2))
		load := map[string]struct {
			n    int
			fail float64
		}{"GET /users/{id}": {7, 0.004}, "GET /checkout": {3, 0.01}, "POST /orders": {2, 0}, "GET /legacy/export": {1, 0}}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for name, l := range load {
				e := ep(name)
				for range l.n {
					p, err := e.Breaker().Allow()
					if err != nil {
						continue
					}
					ok := rnd.Float64() >= l.fail
					if ok {
						p.Report(core.Success, 20*time.Millisecond)
					} else {
						p.Report(core.Failure, 20*time.Millisecond)
					}
					if slo := e.SLO(); slo != nil {
						slo.Record(ok)
					}
				}
			}
		}
	})
	s.stop = func() {
		cancel()
		wg.Wait()
		s.srv.Close()
		_ = h.Close(context.Background())
		_ = mon.Close(context.Background())
		_ = am.Close(context.Background())
		for i := range guards {
			guards[i].Release()
		}
	}
	t.Cleanup(s.stop)
	return s
}

func TestDashboardInBrowser(t *testing.T) {
	exe := chromium(t)
	s := newScene(t)

	ctx, stop := browser(t, exe, 1440, 900, s.srv.URL+"/admin/", nil)
	defer stop()
	step := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		runStep(t, ctx, what, a)
	}
	// clickRow clicks a button in a table row. The row may be re-rendered
	// between finding the button and clicking it; then the click is tried
	// again on the new row.
	clickRow := func(what, sel string) {
		t.Helper()
		for try := 1; ; try++ {
			sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
			_, err := chromedp.Run(sctx, chromedp.Click(chromedp.CSS(sel)))
			scancel()
			if err == nil {
				return
			}
			if try == 5 || !strings.Contains(err.Error(), "No node") {
				t.Fatalf("%s: %v", what, err)
			}
		}
	}
	// text reads an element's text in one evaluation in the page, which
	// re-renders its rows on every message: a node found by one call and
	// read by a second may be gone in between.
	text := func(sel string) string {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
		defer scancel()
		q, _ := json.Marshal(sel)
		v, err := chromedp.Run(sctx, chromedp.Poll[string](`(() => { const e = document.querySelector(`+string(q)+`); return e && e.textContent; })()`))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	row := func(endpoint string) string { return `tr[data-endpoint="` + endpoint + `"]` }

	// A token is configured, so the page asks for it before showing data.
	step("the page asks for the token", chromedp.Poll[chromedp.Void](
		`document.getElementById('banner').textContent.includes('needs the admin token')`))
	step("enter the token", chromedp.SendKeys(chromedp.ID("token-input"), testToken))
	step("submit it", chromedp.Click(chromedp.ID("token-use")))

	// It shows the endpoints, live.
	step("rows appear", chromedp.WaitVisible(chromedp.CSS(row("GET /users/{id}"))))
	if got := text(row("GET /checkout") + " .badge.state"); got != "Closed" {
		t.Fatalf("GET /checkout shows %q", got)
	}
	if got := text(row("GET /search") + " .badge.state"); got != "Half-open" {
		t.Fatalf("GET /search shows %q", got)
	}
	step("the connection is live", chromedp.Poll[chromedp.Void](`document.getElementById('conn').dataset.state === 'live'`))

	// The breaker opens in the service: the page follows, with a countdown.
	e, _ := s.m.Lookup("GET /checkout")
	checkout := e.Breaker()
	for i := 0; checkout.State() == events.Closed && i < 10_000; i++ {
		if p, err := checkout.Allow(); err == nil {
			p.Report(core.Failure, 40*time.Millisecond)
		}
	}
	step("the state changes on the page", chromedp.WaitVisible(chromedp.CSS(row("GET /checkout")+` .badge.Open`)))
	step("a countdown to half-open", chromedp.WaitVisible(chromedp.CSS(row("GET /checkout")+` .countdown`)))
	step("the event is listed", chromedp.WaitVisible(chromedp.CSS(`#events li[data-type="state_change"]`)))

	// A control button, available with the token, acts on the service.
	e, _ = s.m.Lookup("GET /legacy/export")
	legacy := e.Breaker()
	clickRow("click Disable", row("GET /legacy/export")+` button[data-action="disable"]`)
	wait.For(t, patience, "the breaker to be disabled", func() bool { return legacy.State() == events.Disabled })
	step("the page shows it", chromedp.WaitVisible(chromedp.CSS(row("GET /legacy/export")+` .badge.Disabled`)))

	// A component's hold names its owner and when it lapses.
	step("the health check holds GET /inventory open", chromedp.WaitVisible(chromedp.CSS(row("GET /inventory")+` .hold`)))
	if got := text(row("GET /inventory") + " .hold"); !strings.HasPrefix(got, "held by health tcp://inventory-db:5432 until ") {
		t.Fatalf("hold shows %q", got)
	}
	// The adaptive limit's load and the rate limit in force.
	if got := text(row("GET /reports") + " td.limits"); !strings.Contains(got, "3/8") || !strings.Contains(got, "50.0/s · 2 refused") {
		t.Fatalf("GET /reports' limits show %q", got)
	}
	// The error budget is a ratio in the JSON and a percentage on the page.
	if got := text(row("GET /reports") + " td.slo small"); got != "50% left" {
		t.Fatalf("GET /reports' error budget shows %q", got)
	}
	// The per-user bulkhead: the busiest users against their limit.
	step("the busiest users", chromedp.WaitVisible(chromedp.CSS(`#users tr[data-user="acme-corp"]`)))
	if got := text(`#users tr[data-user="acme-corp"] td:nth-child(2)`); got != "10/10" {
		t.Fatalf("acme-corp shows %q active", got)
	}
	if got := text("#health"); !strings.Contains(got, "tcp://inventory-db:5432") || !strings.Contains(got, "connection refused") {
		t.Fatalf("health checks show %q", got)
	}

	// The settings editor: see, change, a refused change, reset.
	js := func(expr string) chromedp.Action[chromedp.Void] { return chromedp.Poll[chromedp.Void](expr) }
	editor := `document.getElementById('settings-json').value`
	source := `document.getElementById('settings-source').textContent`
	clickRow("open the settings of GET /users/{id}", row("GET /users/{id}")+` button[data-action="settings"]`)
	step("the settings in effect", js(source+` === 'file' && `+editor+`.includes('"failure_threshold": 5')`))
	edit := func(v string) {
		t.Helper()
		step("clear the editor", chromedp.Evaluate[chromedp.Void](`(() => { const e = document.getElementById('settings-json'); e.value = ''; e.dispatchEvent(new Event('input')); })()`))
		step("type "+v, chromedp.SendKeys(chromedp.ID("settings-json"), v))
		step("apply "+v, chromedp.Click(chromedp.ID("settings-apply")))
	}
	edit(`{"breaker":{"failure_threshold":12}}`)
	step("the change shows", js(source+` === 'runtime' && `+editor+`.includes('"failure_threshold": 12')`))
	wait.For(t, patience, "the change to reach the service", func() bool {
		b, src := s.settings.EndpointSettings("GET /users/{id}")
		return src == "runtime" && strings.Contains(string(b), `"failure_threshold":12`)
	})
	step("the change is on the feed", chromedp.WaitVisible(chromedp.CSS(`#events li[data-type="config_change"]`)))
	edit(`{"breaker":{"failure_threshold":0}}`)
	step("the refusal shows", chromedp.WaitVisible(chromedp.ID("settings-error")))
	if got := text("#settings-error"); !strings.Contains(got, "endpoints[GET /users/{id}].breaker.failure_threshold") || !strings.Contains(got, "must be between 1 and 1000000") {
		t.Fatalf("the refusal shows %q", got)
	}
	if b, _ := s.settings.EndpointSettings("GET /users/{id}"); !strings.Contains(string(b), `"failure_threshold":12`) {
		t.Fatalf("a refused change was applied: %s", b)
	}
	step("reset to the file", chromedp.Click(chromedp.ID("settings-reset")))
	step("back to the file's settings", js(source+` === 'file' && `+editor+`.includes('"failure_threshold": 5') && document.getElementById('settings-error').hidden`))

	// Rates come from successive snapshots.
	step("request rates", chromedp.Poll[chromedp.Void](`document.getElementById('sum-rps').textContent !== '–'`))
	step("the connection is still live", chromedp.Poll[chromedp.Void](`document.getElementById('conn').dataset.state === 'live'`))
	stop() // close the browser before the leak check
}
