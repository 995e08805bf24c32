package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// trendScene is a service whose last five minutes were scripted on a fake
// clock, one sample a second: a busy endpoint, one that tripped and
// recovered, one that had a fault experiment, one with an experiment
// still running, one held open and one disabled; two instances share its
// state.
type trendScene struct {
	clock *core.FakeClock
	m     *core.Manager
	h     *admin.Handler
	srv   *httptest.Server
	rnd   *rand.Rand
}

// The scene's traffic: calls per second, share failing, and latency.
type trendLoad struct {
	rate, fail float64
	base, tail time.Duration
}

var trendLoads = map[string]trendLoad{
	"GET /users/{id}":    {85, 0.003, 18 * time.Millisecond, 40 * time.Millisecond},
	"POST /orders":       {22, 0.01, 45 * time.Millisecond, 120 * time.Millisecond},
	"GET /checkout":      {31, 0.005, 60 * time.Millisecond, 90 * time.Millisecond},
	"GET /search":        {48, 0.002, 9 * time.Millisecond, 30 * time.Millisecond},
	"GET /reports":       {6, 0.01, 180 * time.Millisecond, 400 * time.Millisecond},
	"GET /legacy/export": {0.6, 0, 700 * time.Millisecond, time.Second},
}

const trendSamples = 300 // five minutes at one a second

func newTrendScene(t *testing.T) *trendScene {
	t.Helper()
	s := &trendScene{clock: core.NewFakeClock(time.Date(2025, 10, 8, 14, 25, 0, 0, time.UTC)), rnd: rand.New(rand.NewPCG(7, 11))}
	calm := &core.BreakerConfig{FailureThreshold: 1000, FailureRateThreshold: 95, Timeout: 30 * time.Second}
	slo := &core.SLOConfig{TargetSuccessRate: 0.99, Window: 10 * time.Minute}
	eps := map[string]core.EndpointConfig{}
	for name := range trendLoads {
		eps[name] = core.EndpointConfig{Breaker: calm}
	}
	eps["GET /users/{id}"] = core.EndpointConfig{Breaker: calm, SLO: slo, Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 60, MaxQueueSize: 20}}
	eps["GET /checkout"] = core.EndpointConfig{Breaker: calm, SLO: slo, Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 40, MaxQueueSize: 10}}
	eps["POST /orders"] = core.EndpointConfig{SLO: slo, Breaker: &core.BreakerConfig{FailureThreshold: 5, FailureRateThreshold: 95, Timeout: 30 * time.Second}}
	s.m = newManager(t, s.clock, core.ManagerConfig{Endpoints: eps, Faults: &core.FaultLimits{}})
	t.Cleanup(func() { // the Manager watches for the end of running experiments
		for _, f := range s.m.Faults() {
			s.m.StopFault(f.ID)
		}
	})
	// Calls in flight now.
	for name, held := range map[string]int{"GET /users/{id}": 17, "GET /checkout": 29} {
		for range held {
			g, err := endpoint(t, s.m, name).Bulkhead().TryAcquire()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(g.Release)
		}
	}
	h, err := admin.New(admin.Config{Manager: s.m, Token: testToken, SnapshotInterval: time.Second, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	s.h = h
	mux := http.NewServeMux()
	mux.Handle("/admin/", http.StripPrefix("/admin", h))
	s.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		s.srv.Close()
		if err := h.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})

	endpoint(t, s.m, "GET /legacy/export").Breaker().Disable()
	for i := range trendSamples {
		s.script(t, i)
		s.step(t)
	}
	at := s.clock.Now()
	shares := func(first float64) map[string]float64 {
		m := map[string]float64{}
		for j, name := range slices.Sorted(maps.Keys(trendLoads)) {
			m[name] = math.Round((first+0.04*float64(j%3-1))*100) / 100
		}
		return m
	}
	web1 := shares(0.54)
	web2 := map[string]float64{}
	for k, v := range web1 {
		web2[k] = math.Round((1-v)*100) / 100
	}
	s.m.Bus().Publish(events.StoreStatus{
		Type: events.TypeStoreStatus, Store: "redis", Instance: "web-1", Status: "members", Timestamp: at,
		Instances: []events.Instance{
			{ID: "web-1", LastSeen: at.Add(-800 * time.Millisecond), Healthy: true, Self: true, Shares: web1},
			{ID: "web-2", LastSeen: at.Add(-3200 * time.Millisecond), Healthy: true, Shares: web2},
		},
	})
	wait.For(t, patience, "the scene's events to reach the handler", func() bool {
		var st struct {
			Cluster *struct{} `json:"cluster"`
		}
		serve(t, h, "GET", "/status", testToken, "").json(t, &st)
		return st.Cluster != nil && len(getHistory(t, h, "").Faults) == 2
	})
	return s
}

// script is what happens in second i besides the usual traffic.
func (s *trendScene) script(t *testing.T, i int) {
	t.Helper()
	switch i {
	case 115: // the orders database stalls: five failures in a row trip the breaker
		orders := endpoint(t, s.m, "POST /orders")
		for range 5 {
			if p, err := orders.Breaker().Allow(); err == nil {
				p.Report(core.Failure, 2*time.Second)
				orders.ObserveDuration(2 * time.Second)
			}
		}
	case 180:
		s.startFault(t, core.Fault{ID: "9f3a41c07be25d18", Endpoint: "GET /checkout", Percent: 25, Status: 503, Duration: 10 * time.Minute, Reason: "game day: payment provider outage"})
	case 230:
		s.m.StopFault("9f3a41c07be25d18")
	case 200:
		endpoint(t, s.m, "GET /reports").Breaker().ForceOpen("maintenance: reindexing")
	case 262:
		s.startFault(t, core.Fault{ID: "c41d0e8a5f6b7392", Endpoint: "GET /search", Percent: 20, Latency: 300 * time.Millisecond, LatencyMax: 600 * time.Millisecond, Duration: 15 * time.Minute, Header: "X-Chaos", HeaderValue: "chaos-7", Reason: "latency budget drill"})
	}
	for name, l := range trendLoads {
		e := endpoint(t, s.m, name)
		wave := 1 + 0.18*math.Sin(float64(i)/23+float64(len(name)))
		n := int(l.rate*wave + s.rnd.Float64()*l.rate*0.1 + s.rnd.Float64())
		fail, extra := l.fail, time.Duration(0)
		if name == "POST /orders" && i >= 105 && i < 115 {
			fail, extra = 0.2, 400*time.Millisecond // the stall builds up
		}
		for range n {
			// The experiments answer for the calls they choose, as the
			// middleware lets them; a delay adds to the call.
			var delay time.Duration
			if f, d := e.Inject(chaosHeader, nil); f != nil {
				if f.Status != 0 || f.Abort {
					continue
				}
				delay = d
			}
			p, err := e.Breaker().Allow()
			if err != nil {
				continue
			}
			d := l.base + time.Duration(s.rnd.Float64()*float64(l.tail)) + extra + delay
			if s.rnd.Float64() < 0.004 {
				d *= 3
			}
			ok := s.rnd.Float64() >= fail
			if ok {
				p.Report(core.Success, d)
			} else {
				p.Report(core.Failure, d)
			}
			e.ObserveDuration(d)
			if slo := e.SLO(); slo != nil {
				slo.Record(ok)
			}
		}
	}
}

// chaosHeader is the scene's requests' headers: every one carries the
// header the latency drill filters on.
func chaosHeader(name string) string {
	if name == "X-Chaos" {
		return "chaos-7"
	}
	return ""
}

func (s *trendScene) startFault(t *testing.T, f core.Fault) {
	t.Helper()
	if _, err := s.m.StartFault(f); err != nil {
		t.Fatal(err)
	}
}

// step ends one second: the clock moves and the handler samples.
func (s *trendScene) step(t *testing.T) {
	t.Helper()
	s.clock.Advance(time.Second)
	admin.SampleHistory(s.h)
}

// browser starts a headless Chromium at the given window size on the page
// at url. That first action's context is the browser's, so it has no
// deadline; later steps get deadlines of their own. ready is called once
// the browser runs, before the page loads.
func browser(t *testing.T, exe string, width, height int, url string, ready func(context.Context)) (context.Context, context.CancelFunc) {
	t.Helper()
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
		chromedp.WindowSize(width, height),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop := func() { cancel(); cancelAlloc() }
	if ready != nil {
		ready(ctx)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady(chromedp.ID("conn"))); err != nil {
		stop()
		t.Fatalf("open %s: %v", url, err)
	}
	return ctx, stop
}

// runStep runs one action in the browser, with a deadline of its own.
func runStep(t *testing.T, ctx context.Context, what string, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(sctx, a); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// capture takes a screenshot of the whole page. With BULWARK_SCREENSHOTS
// set, it writes it there under name: BULWARK_SCREENSHOTS=docs writes to
// the module's docs folder (a relative folder is the module's).
func capture(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
	defer scancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatal("the screenshot is not a PNG")
	}
	dir := os.Getenv("BULWARK_SCREENSHOTS")
	if dir == "" {
		return
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", dir)
	}
	out := filepath.Join(dir, name)
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", out, len(png))
}

// sparkCounts reads, per endpoint card, how many points each sparkline
// draws and how many samples the state band covers.
const sparkCounts = `JSON.stringify(Object.fromEntries(Array.from(document.querySelectorAll('#trends article.trend')).map(a => {
  const o = {};
  a.querySelectorAll('svg.spark').forEach(s => {
    const pl = s.querySelector('polyline');
    o[s.dataset.series] = pl ? pl.getAttribute('points').trim().split(/\s+/).length : 0;
  });
  const b = a.querySelector('svg.band');
  o.state = b ? Number(b.dataset.points) : -1;
  return [a.dataset.endpoint, o];
})))`

func TestDashboardTrendsInBrowser(t *testing.T) {
	exe := chromium(t)
	s := newTrendScene(t)
	// Every console error and uncaught exception of the page. Failed
	// requests the test provokes (a refused experiment) are the network's
	// log entries, not the page's.
	var (
		consoleMu sync.Mutex
		problems  []string
	)
	consoleDone := make(chan struct{})
	var messages iter.Seq2[chromedp.ConsoleMessage, error]
	ctx, stop := browser(t, exe, 1440, 900, s.srv.URL+"/admin/", func(ctx context.Context) { messages = chromedp.Console(ctx) })
	defer stop()
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			if (m.Type == chromedp.ConsoleError || m.IsException()) && m.Source != "network" {
				consoleMu.Lock()
				problems = append(problems, m.String())
				consoleMu.Unlock()
			}
		}
	}()

	step := func(what string, a chromedp.Action[chromedp.Void]) {
		t.Helper()
		runStep(t, ctx, what, a)
	}
	eval := func(expr string) string {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 15*time.Second)
		defer scancel()
		v, err := chromedp.Run(sctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	js := func(expr string) chromedp.Action[chromedp.Void] { return chromedp.Poll[chromedp.Void](expr) }

	step("enter the token", chromedp.SendKeys(chromedp.ID("token-input"), testToken))
	step("submit it", chromedp.Click(chromedp.ID("token-use")))
	step("the connection is live", js(`document.getElementById('conn').dataset.state === 'live'`))

	// Each sparkline draws every point GET history gives.
	hb := getHistory(t, s.h, "")
	if len(hb.Endpoints) != len(trendLoads) {
		t.Fatalf("history of %d endpoints", len(hb.Endpoints))
	}
	checkCounts := func(hb historyBody) {
		t.Helper()
		step("every card drawn", js(fmt.Sprintf(`document.querySelectorAll('#trends article.trend svg.spark polyline').length === %d`, 3*len(hb.Endpoints))))
		var got map[string]map[string]int
		if err := json.Unmarshal([]byte(eval(sparkCounts)), &got); err != nil {
			t.Fatal(err)
		}
		for name, series := range hb.Endpoints {
			want := len(series.T)
			for _, k := range []string{"rate", "failure_pct", "p99_ms", "state"} {
				if got[name][k] != want {
					t.Errorf("%s: the %s line draws %d points, GET history gives %d", name, k, got[name][k], want)
				}
			}
		}
	}
	step("the history is drawn", js(`document.querySelectorAll('#trends article.trend').length === 6`))
	checkCounts(hb)
	if n := len(hb.Endpoints["GET /users/{id}"].T); n != trendSamples {
		t.Fatalf("%d samples of GET /users/{id}, want %d", n, trendSamples)
	}

	// The trip of POST /orders is an Open stretch of its state band, then
	// half-open, then closed again.
	card := func(ep string) string { return `#trends article.trend[data-endpoint="` + ep + `"]` }
	if got := eval(`Array.from(document.querySelectorAll('` + card("POST /orders") + ` svg.band rect.seg')).map(r => r.dataset.state).join(',')`); got != "Closed,Open,HalfOpen,Closed" {
		t.Fatalf("POST /orders' state band: %s", got)
	}
	if s := hb.Endpoints["POST /orders"].State; !slices.Contains(s, events.Open) {
		t.Fatalf("no Open sample of POST /orders: %v", s)
	}
	if got := eval(`Array.from(document.querySelectorAll('` + card("GET /reports") + ` svg.band rect.seg')).map(r => r.dataset.state).join(',')`); got != "Closed,ForcedOpen" {
		t.Fatalf("GET /reports' state band: %s", got)
	}
	// The fault experiments are marked where they ran: the ended one on
	// GET /checkout, the running one on GET /search.
	for ep, id := range map[string]string{"GET /checkout": "9f3a41c07be25d18", "GET /search": "c41d0e8a5f6b7392"} {
		if n := eval(`String(document.querySelectorAll('` + card(ep) + ` rect.fault[data-fault="` + id + `"]').length)`); n != "4" {
			t.Errorf("%s: fault %s marked on %s of its 3 lines and band", ep, id, n)
		}
	}
	if n := eval(`String(document.querySelectorAll('` + card("GET /users/{id}") + ` rect.fault').length)`); n != "0" {
		t.Errorf("GET /users/{id} shows %s fault marks", n)
	}

	// The cluster panel lists both instances, this one marked.
	step("the cluster panel", chromedp.WaitVisible(chromedp.CSS(`#cluster li[data-instance="web-2"]`)))
	if got := eval(`Array.from(document.querySelectorAll('#cluster li.instance')).map(l => l.dataset.instance + (l.querySelector('.self-mark') ? '*' : '') + (l.querySelector('.hdot.ok') ? '+' : '')).join(',')`); got != "web-1*+,web-2+" {
		t.Fatalf("instances: %s", got)
	}
	if got := eval(`document.querySelector('#cluster li[data-instance="web-1"] .shares li[data-endpoint="GET /users/{id}"]').textContent`); !strings.Contains(got, "GET /users/{id}") || !strings.HasSuffix(got, "%") {
		t.Fatalf("web-1's share of GET /users/{id}: %q", got)
	}
	if got := eval(`document.querySelector('#cluster li[data-instance="web-2"] .seen').textContent`); got != "seen 3s ago" && got != "seen 4s ago" {
		t.Fatalf("web-2 last seen: %q", got)
	}

	// A live sample is appended to the series.
	s.script(t, trendSamples)
	s.step(t)
	live := getHistory(t, s.h, "")
	step("the new sample is drawn", js(`JSON.parse(`+sparkCounts+`)['GET /users/{id}'].rate === `+fmt.Sprint(trendSamples+1)))
	checkCounts(live)

	// The running experiment is listed with a countdown.
	running := `#faults li[data-id="c41d0e8a5f6b7392"]`
	step("the running experiment", chromedp.WaitVisible(chromedp.CSS(running+` .fault-countdown`)))
	if got := eval(`document.querySelector('` + running + `').textContent`); !strings.Contains(got, "GET /search") || !strings.Contains(got, "ends in 14m") ||
		!strings.Contains(got, "only with header X-Chaos") || strings.Contains(got, "chaos-7") {
		t.Fatalf("the running experiment shows %q", got)
	}

	// Starting one: the page's own check, then the server's problems,
	// each beside its field.
	fill := func(id, v string) {
		t.Helper()
		q, _ := json.Marshal(v)
		step("fill "+id, chromedp.Evaluate[chromedp.Void](`document.getElementById('`+id+`').value = `+string(q)))
	}
	fill("fault-endpoint", "GET /checkout")
	fill("fault-percent", "150")
	step("start", chromedp.Click(chromedp.ID("fault-start")))
	step("the percent is refused", js(`document.getElementById('fault-percent-error').textContent.includes('at most 100')`))
	if got := eval(`document.getElementById('fault-percent').getAttribute('aria-invalid')`); got != "true" {
		t.Fatalf("percent not marked invalid: %q", got)
	}
	fill("fault-percent", "25")
	fill("fault-duration", "3h")
	fill("fault-reason", "game day")
	step("start again", chromedp.Click(chromedp.ID("fault-start")))
	step("the server refuses the duration", js(`document.getElementById('fault-duration-error').textContent.startsWith('must be between 1ms and 1h0m0s')`))
	if got := eval(`document.getElementById('fault-percent-error').textContent + document.getElementById('fault-error').hidden`); got != "true" {
		t.Fatalf("other errors still shown: %q", got)
	}
	fill("fault-duration", "5m")
	step("start for real", chromedp.Click(chromedp.ID("fault-start")))
	added := `#faults li:not([data-id="c41d0e8a5f6b7392"])`
	step("it runs", chromedp.WaitVisible(chromedp.CSS(added)))
	if got := eval(`document.querySelector('` + added + `').textContent`); !strings.Contains(got, "status 503 on 25%") || !regexp.MustCompile(`ends in (5m 00s|4m 5\ds)`).MatchString(got) {
		t.Fatalf("the new experiment shows %q", got)
	}
	newID := eval(`document.querySelector('` + added + `').dataset.id`)
	if fs := s.m.Faults(); len(fs) != 2 || !slices.ContainsFunc(fs, func(f core.Fault) bool { return f.ID == newID && f.Endpoint == "GET /checkout" && f.Status == 503 }) {
		t.Fatalf("the Manager runs %+v, want the page's %s too", fs, newID)
	}
	step("its span shows", chromedp.WaitVisible(chromedp.CSS(card("GET /checkout")+` rect.fault[data-fault="`+newID+`"]`)))
	step("the errors are gone", js(`document.getElementById('fault-duration-error').textContent === ''`))
	// The page draws its lists again on every message, but a button stays
	// the same node: one drawn anew would take the target of a click in
	// progress away from under the pointer.
	stopButton := `#faults li[data-id="` + newID + `"] button[data-action="stop-fault"]`
	step("hold its buttons", chromedp.Evaluate[chromedp.Void](`window.held = [document.querySelector('`+stopButton+`'),
		document.querySelector('#endpoints tr[data-endpoint="GET /checkout"] button[data-action="force_open"]')]`))
	users := endpoint(t, s.m, "GET /users/{id}").Breaker()
	users.ForceOpen("a message to draw")
	step("the page draws it", chromedp.WaitVisible(chromedp.CSS(`#endpoints tr[data-endpoint="GET /users/{id}"].state-ForcedOpen`)))
	if got := eval(`String(window.held.every(b => b !== null && b.isConnected))`); got != "true" {
		t.Fatal("drawing the page again replaced its buttons")
	}
	users.Reset()
	step("and draws it back", chromedp.WaitVisible(chromedp.CSS(`#endpoints tr[data-endpoint="GET /users/{id}"].state-Closed`)))
	// Stop it.
	step("stop it", chromedp.Click(chromedp.CSS(stopButton)))
	step("it is gone", js(`!document.querySelector('#faults li[data-id="`+newID+`"]') && !!document.querySelector('`+running+`')`))
	step("its end is on the feed", chromedp.WaitVisible(chromedp.CSS(`#events li[data-type="fault_end"]`)))

	// Nothing spills over the width, at 1440 px and at 390 px.
	step("the toast fades", js(`document.getElementById('toast').hidden`))
	step("clear the form", chromedp.Evaluate[chromedp.Void](`document.getElementById('fault-form').reset()`))
	shot := func(width int, name string) {
		t.Helper()
		step(fmt.Sprintf("resize to %dpx", width), chromedp.EmulateViewport(int64(width), 900))
		step("lay out", js(fmt.Sprintf(`window.innerWidth === %d`, width)))
		if w := eval(`String(document.documentElement.scrollWidth)`); w != fmt.Sprint(width) {
			t.Errorf("at %dpx the page is %spx wide", width, w)
		}
		capture(t, ctx, name)
	}
	shot(1440, "dashboard-1440.png")
	shot(390, "dashboard-390.png")

	stop() // close the browser before the leak check
	<-consoleDone
	consoleMu.Lock()
	defer consoleMu.Unlock()
	if len(problems) > 0 {
		t.Fatalf("the page logged errors:\n%s", strings.Join(problems, "\n"))
	}
}
