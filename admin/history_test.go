package admin_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/wait"
)

// faultChange has the JSON form of a fault experiment's start or end, as
// the Manager publishes it.
type faultChange struct {
	Type      string    `json:"type"`
	ID        string    `json:"id"`
	Endpoint  string    `json:"endpoint"`
	Percent   float64   `json:"percent"`
	Status    int       `json:"status,omitempty"`
	Ends      time.Time `json:"ends"`
	Reason    string    `json:"reason,omitempty"`
	Injected  int64     `json:"injected,omitempty"`
	Timestamp time.Time `json:"timestamp"`
}

func (f faultChange) EventType() string { return f.Type }

// historyBody is GET …/history decoded.
type historyBody struct {
	IntervalMS    int64 `json:"interval_ms"`
	WindowSeconds int64 `json:"window_seconds"`
	Endpoints     map[string]struct {
		T          []int64        `json:"t"`
		Rate       []float64      `json:"rate"`
		FailurePct []float64      `json:"failure_pct"`
		P99MS      []float64      `json:"p99_ms"`
		State      []events.State `json:"state"`
		Injected   []int64        `json:"injected"`
	} `json:"endpoints"`
	Faults []struct {
		ID       string `json:"id"`
		Endpoint string `json:"endpoint"`
		Start    int64  `json:"start"`
		End      *int64 `json:"end"`
	} `json:"faults"`
}

func getHistory(t testing.TB, h *admin.Handler, query string) historyBody {
	t.Helper()
	r := serve(t, h, "GET", "/history"+query, testToken, "")
	if r.code != 200 {
		t.Fatalf("history%s: %d %s", query, r.code, r.body)
	}
	var hb historyBody
	r.json(t, &hb)
	return hb
}

// calls runs n calls through an endpoint's breaker, every failEvery-th
// one failing (none when 0), each lasting d.
func calls(t testing.TB, e *core.Endpoint, n, failEvery int, d time.Duration) {
	t.Helper()
	for i := range n {
		p, err := e.Breaker().Allow()
		if err != nil {
			t.Fatalf("call %d refused: %v", i, err)
		}
		o := core.Success
		if failEvery > 0 && i%failEvery == 0 {
			o = core.Failure
		}
		p.Report(o, d)
		e.ObserveDuration(d)
	}
}

// historyFixture is a handler sampling every 2s on a fake clock; the test
// takes each sample itself (the real ticker's find the clock unmoved).
func historyFixture(t *testing.T, cfg admin.Config) (*admin.Handler, *core.Manager, *core.FakeClock) {
	t.Helper()
	clock := core.NewFakeClock(seedTime)
	cfg.Manager = newManager(t, clock)
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = 2 * time.Second
	}
	h, m := newHandler(t, cfg)
	return h, m, clock
}

// Rate, failure share and p99 are the interval's, from the counters'
// deltas; the state series shows a trip and its end.
func TestHistoryMath(t *testing.T) {
	clock := core.NewFakeClock(seedTime)
	m := newManager(t, clock)
	api := endpoint(t, m, "GET /api")
	calls(t, api, 500, 0, time.Second) // before the handler: not in its history
	h, _ := newHandler(t, admin.Config{Manager: m, SnapshotInterval: 2 * time.Second})
	sample := func(d time.Duration) {
		clock.Advance(d)
		admin.SampleHistory(h)
	}

	// 100 calls in 2s, 10 failing; 98 took 8ms and 2 took 300ms, so the
	// 99th of 100 is halfway through the 250ms–500ms bucket.
	calls(t, api, 98, 10, 8*time.Millisecond)
	calls(t, api, 2, 0, 300*time.Millisecond)
	sample(2 * time.Second)
	// A quiet interval of 4s (a late tick): nothing.
	sample(4 * time.Second)
	// 3 failures in a row open the breaker.
	calls(t, api, 3, 1, 40*time.Millisecond)
	sample(2 * time.Second)
	// The open timeout (30s) passes: the sample sees HalfOpen.
	sample(30 * time.Second)
	// A clock that did not move takes no sample.
	admin.SampleHistory(h)

	hb := getHistory(t, h, "")
	s, ok := hb.Endpoints["GET /api"]
	if !ok || len(hb.Endpoints) != 1 {
		t.Fatalf("endpoints: %v", hb.Endpoints)
	}
	start := seedTime.UnixMilli()
	wantT := []int64{start + 2000, start + 6000, start + 8000, start + 38000}
	if !slices.Equal(s.T, wantT) {
		t.Fatalf("t %v, want %v", s.T, wantT)
	}
	if want := []float64{50, 0, 1.5, 0}; !slices.Equal(s.Rate, want) {
		t.Errorf("rate %v, want %v", s.Rate, want)
	}
	if want := []float64{10, 0, 100, 0}; !slices.Equal(s.FailurePct, want) {
		t.Errorf("failure_pct %v, want %v", s.FailurePct, want)
	}
	// 3 calls of 40ms: 99% of the way through the 25ms–50ms bucket.
	if want := []float64{375, 0, 49.75, 0}; !near(s.P99MS, want, 0.051) {
		t.Errorf("p99_ms %v, want %v", s.P99MS, want)
	}
	if want := []events.State{events.Closed, events.Closed, events.Open, events.HalfOpen}; !slices.Equal(s.State, want) {
		t.Errorf("state %v, want %v", s.State, want)
	}
	if want := []int64{0, 0, 0, 0}; !slices.Equal(s.Injected, want) {
		t.Errorf("injected %v, want %v", s.Injected, want)
	}
	if hb.IntervalMS != 2000 || hb.WindowSeconds != 900 {
		t.Errorf("interval %dms, window %ds", hb.IntervalMS, hb.WindowSeconds)
	}

	// An endpoint made after a sample starts from zero at the next one.
	calls(t, endpoint(t, m, "POST /new"), 4, 0, time.Millisecond)
	sample(2 * time.Second)
	if n := getHistory(t, h, "").Endpoints["POST /new"]; !slices.Equal(n.Rate, []float64{2}) || !near(n.P99MS, []float64{4.95}, 0.051) {
		t.Errorf("new endpoint: rate %v, p99 %v", n.Rate, n.P99MS)
	}
}

// Each ring covers 15 minutes, in at most 900 points.
func TestHistoryRingBound(t *testing.T) {
	for _, c := range []struct {
		interval    time.Duration
		points      int
		windowSecs  int64
		intervalMS  int64
		sampleCount int
	}{
		{2 * time.Second, 450, 900, 2000, 470},
		{time.Second, 900, 900, 1000, 950},
		{100 * time.Millisecond, 900, 90, 100, 910},
		{time.Hour, 1, 3600, 3_600_000, 3},
	} {
		h, m, clock := historyFixture(t, admin.Config{SnapshotInterval: c.interval})
		api := endpoint(t, m, "GET /api")
		for i := range c.sampleCount {
			calls(t, api, i%7, 0, time.Millisecond)
			clock.Advance(c.interval)
			admin.SampleHistory(h)
		}
		hb := getHistory(t, h, "")
		s := hb.Endpoints["GET /api"]
		if len(s.T) != c.points || len(s.Rate) != c.points || len(s.FailurePct) != c.points ||
			len(s.P99MS) != c.points || len(s.State) != c.points || len(s.Injected) != c.points {
			t.Fatalf("interval %v: %d points, want %d", c.interval, len(s.T), c.points)
		}
		// The newest points, oldest first.
		last := seedTime.Add(time.Duration(c.sampleCount) * c.interval).UnixMilli()
		if s.T[len(s.T)-1] != last || s.T[0] != last-int64(c.points-1)*c.interval.Milliseconds() {
			t.Fatalf("interval %v: from %d to %d, want to %d", c.interval, s.T[0], s.T[len(s.T)-1], last)
		}
		if hb.WindowSeconds != c.windowSecs || hb.IntervalMS != c.intervalMS {
			t.Fatalf("interval %v: window %ds, interval %dms", c.interval, hb.WindowSeconds, hb.IntervalMS)
		}
	}
}

// The history holds no more endpoints than the Manager does.
func TestHistoryEndpointsBoundedByManager(t *testing.T) {
	clock := core.NewFakeClock(seedTime)
	m := newManager(t, clock, core.ManagerConfig{MaxEndpoints: 3})
	h, _ := newHandler(t, admin.Config{Manager: m, SnapshotInterval: time.Second})
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		_, _ = m.Endpoint(name) // d and e are refused
	}
	clock.Advance(time.Second)
	admin.SampleHistory(h)
	if got := len(getHistory(t, h, "").Endpoints); got != 3 {
		t.Fatalf("%d endpoints in the history, the Manager holds 3", got)
	}
}

func TestHistoryShapeFilterAndFaults(t *testing.T) {
	h, m, clock := historyFixture(t, admin.Config{Token: testToken})
	calls(t, endpoint(t, m, "GET /a"), 10, 0, time.Millisecond)
	calls(t, endpoint(t, m, "GET /b"), 10, 2, time.Millisecond)
	clock.Advance(2 * time.Second)
	admin.SampleHistory(h)
	// A fault runs on GET /a and ends; another still runs on GET /b.
	at := clock.Now()
	bus := m.Bus()
	bus.Publish(faultChange{Type: "fault_start", ID: "f1", Endpoint: "GET /a", Percent: 50, Status: 503, Ends: at.Add(time.Minute), Timestamp: at})
	bus.Publish(faultChange{Type: "fault_start", ID: "f2", Endpoint: "GET /b", Percent: 10, Ends: at.Add(time.Minute), Timestamp: at.Add(time.Second)})
	bus.Publish(faultChange{Type: "fault_end", ID: "f1", Endpoint: "GET /a", Reason: "stopped", Injected: 4, Timestamp: at.Add(3 * time.Second)})
	// An end whose start the handler never saw: it ran since the handler came.
	bus.Publish(faultChange{Type: "fault_end", ID: "f0", Endpoint: "GET /a", Reason: "expired", Timestamp: at.Add(4 * time.Second)})
	wait.For(t, patience, "the fault events to reach the history", func() bool {
		return len(getHistory(t, h, "").Faults) == 3
	})

	r := serve(t, h, "GET", "/history", testToken, "")
	if got, want := keys(t, r.body), []string{"endpoints", "faults", "interval_ms", "window_seconds"}; !slices.Equal(got, want) {
		t.Fatalf("top-level keys %v, want %v", got, want)
	}
	var raw struct {
		Endpoints map[string]json.RawMessage `json:"endpoints"`
		Faults    []json.RawMessage          `json:"faults"`
	}
	r.json(t, &raw)
	if got, want := keys(t, raw.Endpoints["GET /b"]), []string{"failure_pct", "injected", "p99_ms", "rate", "state", "t"}; !slices.Equal(got, want) {
		t.Fatalf("series keys %v, want %v", got, want)
	}
	start, end := at.UnixMilli(), at.Add(3*time.Second).UnixMilli()
	wantFaults := []string{
		`{"id":"f1","endpoint":"GET /a","start":` + itoa(start) + `,"end":` + itoa(end) + `}`,
		`{"id":"f2","endpoint":"GET /b","start":` + itoa(start+1000) + `,"end":null}`,
		`{"id":"f0","endpoint":"GET /a","start":` + itoa(seedTime.UnixMilli()) + `,"end":` + itoa(start+4000) + `}`,
	}
	for i, f := range raw.Faults {
		if string(f) != wantFaults[i] {
			t.Errorf("fault %d: %s, want %s", i, f, wantFaults[i])
		}
	}
	var hb historyBody
	r.json(t, &hb)
	if b := hb.Endpoints["GET /b"]; len(b.T) != 1 || b.State[0] != events.Closed || b.FailurePct[0] != 50 || b.Rate[0] != 5 {
		t.Fatalf("GET /b: %+v", b)
	}
	if string(r.body[len(r.body)-1]) != "\n" || !json.Valid(r.body) {
		t.Fatal("not one JSON document")
	}

	// The filter keeps one endpoint and its faults.
	one := getHistory(t, h, "?endpoint="+url.QueryEscape("GET /a"))
	if len(one.Endpoints) != 1 || len(one.Endpoints["GET /a"].T) != 1 || len(one.Faults) != 2 || one.Faults[0].ID != "f1" || one.Faults[1].ID != "f0" {
		t.Fatalf("filtered: %+v", one)
	}
	for q, code := range map[string]int{"?endpoint=" + url.QueryEscape("GET /nope"): 404, "?endpoint=": 400, "?endpoint=%01": 400} {
		if r := serve(t, h, "GET", "/history"+q, testToken, ""); r.code != code {
			t.Errorf("%s: %d %s, want %d", q, r.code, r.body, code)
		}
	}

	// Ended spans leave with the window; running ones stay.
	clock.Advance(16 * time.Minute)
	admin.SampleHistory(h)
	if f := getHistory(t, h, "").Faults; len(f) != 1 || f[0].ID != "f2" {
		t.Fatalf("after the window: %+v", f)
	}
}

func near(got, want []float64, tol float64) bool {
	return slices.EqualFunc(got, want, func(a, b float64) bool { return a >= b-tol && a <= b+tol })
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

// History follows the read rule of the status.
func TestHistoryAuth(t *testing.T) {
	h, _, _ := historyFixture(t, admin.Config{Token: testToken})
	for _, tok := range []string{"", "wrong-token-wrong-token"} {
		if r := serve(t, h, "GET", "/history", tok, ""); r.code != 401 {
			t.Fatalf("token %q: %d %s", tok, r.code, r.body)
		}
	}
	if r := serve(t, h, "GET", "/history", testToken, ""); r.code != 200 {
		t.Fatalf("with the token: %d", r.code)
	}
	if r := serve(t, h, "POST", "/history", testToken, "{}"); r.code != 405 {
		t.Fatalf("POST: %d", r.code)
	}
	pub, _, _ := historyFixture(t, admin.Config{Token: testToken, PublicRead: true})
	if r := serve(t, pub, "GET", "/history", "", ""); r.code != 200 {
		t.Fatalf("public read: %d", r.code)
	}
	open, _, _ := historyFixture(t, admin.Config{})
	if r := serve(t, open, "GET", "/history", "", ""); r.code != 200 {
		t.Fatalf("no token configured: %d", r.code)
	}
}

// The snapshot tick takes the samples.
func TestHistorySampledOnTheTick(t *testing.T) {
	m := newManager(t, core.SystemClock())
	h, _ := newHandler(t, admin.Config{Manager: m, SnapshotInterval: 10 * time.Millisecond})
	api := endpoint(t, m, "GET /api")
	wait.For(t, patience, "three samples", func() bool {
		calls(t, api, 1, 0, time.Millisecond)
		return len(getHistory(t, h, "").Endpoints["GET /api"].T) >= 3
	})
}

// The status carries the latest list of instances a store published.
func TestStatusCluster(t *testing.T) {
	h, m, _ := historyFixture(t, admin.Config{Token: testToken})
	if r := serve(t, h, "GET", "/status", testToken, ""); slices.Contains(keys(t, r.body), "cluster") {
		t.Fatalf("cluster without a store: %s", r.body)
	}
	at := seedTime
	m.Bus().Publish(events.StoreStatus{Type: events.TypeStoreStatus, Store: "redis", Instance: "web-2", Status: "members", Timestamp: at,
		Instances: []events.Instance{
			{ID: "web-2", LastSeen: at, Healthy: true, Self: true, Shares: map[string]float64{"GET /a": 0.4}},
			{ID: "web-1", LastSeen: at.Add(-3 * time.Second), Healthy: true, Shares: map[string]float64{"GET /a": 0.6}},
		}})
	// A store status without instances leaves the list alone.
	m.Bus().Publish(events.StoreStatus{Type: events.TypeStoreStatus, Store: "redis", Status: events.StoreError, Error: "x", Timestamp: at})
	var st struct {
		Cluster *struct {
			Instances []events.Instance `json:"instances"`
		} `json:"cluster"`
	}
	wait.For(t, patience, "the store status to reach the handler", func() bool {
		r := serve(t, h, "GET", "/status", testToken, "")
		r.json(t, &st)
		return st.Cluster != nil && admin.Seq(h) == 1
	})
	// The list is the snapshots' to carry, not an event of its own: only
	// the error is news.
	if r := serve(t, h, "GET", "/events", testToken, ""); strings.Contains(string(r.body), "members") || !strings.Contains(string(r.body), `"error":"x"`) {
		t.Fatalf("events: %s", r.body)
	}
	in := st.Cluster.Instances
	if len(in) != 2 || in[0].ID != "web-1" || in[1].ID != "web-2" || !in[1].Self || in[0].Self || in[0].Shares["GET /a"] != 0.6 {
		t.Fatalf("instances: %+v", in)
	}
	if r := serve(t, h, "GET", "/status", "", ""); r.code != 401 {
		t.Fatalf("cluster without the token: %d", r.code)
	}
}

// Failures a fault experiment made are in the interval's failures and in
// its injected count.
func TestHistoryCountsInjectedFailures(t *testing.T) {
	clock := core.NewFakeClock(seedTime)
	m := newManager(t, clock, core.ManagerConfig{Faults: &core.FaultLimits{}})
	api := endpoint(t, m, "GET /api")
	h, _ := newHandler(t, admin.Config{Manager: m, SnapshotInterval: 2 * time.Second, Token: testToken})
	calls(t, api, 1, 0, time.Millisecond) // one real success
	f, err := m.StartFault(core.Fault{Endpoint: "GET /api", Percent: 100, Status: 500})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got, _ := api.Inject(nil, nil); got == nil {
			t.Fatal("no fault injected")
		}
	}
	m.StopFault(f.ID)
	clock.Advance(2 * time.Second)
	admin.SampleHistory(h)
	s := getHistory(t, h, "").Endpoints["GET /api"]
	if len(s.Injected) != 1 || s.Injected[0] != 3 || s.FailurePct[0] != 75 || s.Rate[0] != 2 {
		t.Fatalf("injected %v, failure %% %v, rate %v; want 3, 75 and 2/s", s.Injected, s.FailurePct, s.Rate)
	}
}
