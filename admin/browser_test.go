package admin_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
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
// SLOs, alerts and a per-user top list, and traffic flowing.
type scene struct {
	m      *core.Manager
	srv    *httptest.Server
	stop   func()
	guards []core.Guard
}

func newScene(t *testing.T) *scene {
	t.Helper()
	m, err := core.NewManager(core.ManagerConfig{
		Breaker: core.Config{FailureThreshold: 1000, Timeout: 45 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &scene{m: m}
	am, err := alert.NewManager(alert.ManagerConfig{Bus: m.Bus()})
	if err != nil {
		t.Fatal(err)
	}
	guard, err := core.NewSLOGuard(m, core.SLOGuardConfig{})
	if err != nil {
		t.Fatal(err)
	}

	bulk := func(name string, size, held int) *core.Bulkhead {
		b, err := core.NewBulkhead(name, core.BulkheadConfig{MaxConcurrentRequests: size, MaxQueueSize: 10})
		if err != nil {
			t.Fatal(err)
		}
		for range held {
			g, _ := b.TryAcquire()
			s.guards = append(s.guards, g)
		}
		return b
	}
	bulkheads := admin.BulkheadList{
		bulk("GET /users/{id}", 50, 21), bulk("POST /orders", 20, 19), bulk("GET /checkout", 40, 6),
	}
	health := admin.HealthFunc(func() []admin.HealthStatus {
		now := time.Now()
		return []admin.HealthStatus{
			{Endpoint: "GET /inventory", Probe: "tcp://inventory-db:5432", ConsecutiveFailures: 4, Checks: 120, Failures: 4, ForcedOpen: true,
				Last: admin.HealthResultOf(false, 3*time.Second, errors.New("dial tcp 10.0.4.17:5432: connect: connection refused"), now)},
			{Endpoint: "GET /users/{id}", Probe: "http://users-svc/healthz", Healthy: true, ConsecutiveSuccesses: 118, Checks: 120,
				Last: admin.HealthResultOf(true, 4200*time.Microsecond, nil, now)},
			{Endpoint: "POST /orders", Probe: "grpc://orders-svc:9090", Healthy: true, ConsecutiveSuccesses: 12, Checks: 120, Failures: 9,
				Last: admin.HealthResultOf(true, 11*time.Millisecond, nil, now)},
		}
	})
	users := admin.UserBulkheadFunc(func() []admin.UserBulkheadStatus {
		return []admin.UserBulkheadStatus{{
			Name: "per user · all endpoints", Users: 1284, MaxUsers: 10000, Active: 63, Total: 918_311, Rejected: 1_204,
			TopUsers: []admin.UserStatus{
				{User: "acme-corp", Active: 10, Total: 48_210, Rejected: 312},
				{User: "globex-ci", Active: 7, Total: 31_877, Rejected: 45},
				{User: "user-48213", Active: 4, Total: 9_420},
				{User: "initech", Active: 3, Total: 7_051},
				{User: "user-10077", Active: 2, Total: 2_388},
			},
		}}
	})

	h, err := admin.New(admin.Config{
		Manager: m, Token: testToken, Bulkheads: bulkheads, UserBulkheads: users, SLO: guard,
		Health: health, Alerts: am, SnapshotInterval: 500 * time.Millisecond, Logger: discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", h)) // the page must work under a prefix
	s.srv = httptest.NewServer(mux)

	br := func(name string) *core.Breaker {
		b, err := m.Breaker(name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// POST /orders fails until its failure rate opens it.
	orders := br("POST /orders")
	for i := 0; orders.State() == core.Closed && i < 100; i++ {
		p, err := orders.Allow()
		if err == nil {
			fail := i%5 != 0
			p.Report(map[bool]core.Outcome{true: core.Failure, false: core.Success}[fail], 30*time.Millisecond)
			_ = guard.RecordRequest("POST /orders", !fail)
		}
	}
	br("GET /search").ApplyRemote(core.HalfOpen, time.Time{}, "open timeout elapsed")
	br("GET /inventory").ForceOpen("health check tcp://inventory-db:5432 failed 4 times in a row")
	br("GET /legacy/export")
	br("GET /checkout")

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // traffic
		defer wg.Done()
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
				b := br(name)
				for range l.n {
					p, err := b.Allow()
					if err != nil {
						continue
					}
					ok := rnd.Float64() >= l.fail
					if ok {
						p.Report(core.Success, 20*time.Millisecond)
					} else {
						p.Report(core.Failure, 20*time.Millisecond)
					}
					_ = guard.RecordRequest(name, ok)
				}
			}
		}
	}()
	s.stop = func() {
		cancel()
		wg.Wait()
		s.srv.Close()
		h.Close()
		_ = am.Close(context.Background())
		for i := range s.guards {
			s.guards[i].Release()
		}
	}
	t.Cleanup(s.stop)
	return s
}

func TestDashboardInBrowser(t *testing.T) {
	exe := chromium(t)
	s := newScene(t)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	// The first Run starts the browser, and its context is the browser's:
	// no timeout on it. Later steps get deadlines of their own.
	if err := chromedp.Do(ctx, chromedp.Navigate(s.srv.URL+"/admin/")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	step := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
		defer scancel()
		if _, err := chromedp.Run(sctx, a); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
		defer scancel()
		v, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
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
	checkout, _ := s.m.Lookup("GET /checkout")
	for i := 0; checkout.State() == core.Closed && i < 10_000; i++ {
		if p, err := checkout.Allow(); err == nil {
			p.Report(core.Failure, 40*time.Millisecond)
		}
	}
	step("the state changes on the page", chromedp.WaitVisible(chromedp.CSS(row("GET /checkout")+` .badge.Open`)))
	step("a countdown to half-open", chromedp.WaitVisible(chromedp.CSS(row("GET /checkout")+` .countdown`)))
	step("the event is listed", chromedp.WaitVisible(chromedp.CSS(`#events li[data-type="state_change"]`)))

	// A control button, available with the token, acts on the service.
	legacy, _ := s.m.Lookup("GET /legacy/export")
	step("click Disable", chromedp.Click(chromedp.CSS(row("GET /legacy/export")+` button[data-action="disable"]`)))
	waitFor(t, "the breaker to be disabled", func() bool { return legacy.State() == core.Disabled })
	step("the page shows it", chromedp.WaitVisible(chromedp.CSS(row("GET /legacy/export")+` .badge.Disabled`)))

	// Rates come from successive snapshots.
	step("request rates", chromedp.Poll[chromedp.Void](`document.getElementById('sum-rps').textContent !== '–'`))
	if os.Getenv("BULWARK_SCREENSHOT") == "1" {
		time.Sleep(2500 * time.Millisecond) // steadier rates for the picture
	}
	// The click scrolled the row into view; put the table back for the picture.
	step("scroll back", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](`document.querySelector('.table-wrap').scrollLeft = 0`)(ctx, t)
		return err
	}))
	step("move the mouse away", chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 1, 1))
	step("the connection is still live", chromedp.Poll[chromedp.Void](`document.getElementById('conn').dataset.state === 'live'`))
	step("let the toast fade", chromedp.Poll[chromedp.Void](`document.getElementById('toast').hidden`, chromedp.WithPollingTimeout(10*time.Second)))

	sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
	defer scancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatal("the screenshot is not a PNG")
	}
	out := filepath.Join(t.TempDir(), "dashboard.png")
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
	if os.Getenv("BULWARK_SCREENSHOT") == "1" {
		doc := filepath.Join("..", "docs", "dashboard.png")
		if err := os.MkdirAll(filepath.Dir(doc), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(doc, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", doc)
	}
	cancel() // close the browser before the leak check
}
