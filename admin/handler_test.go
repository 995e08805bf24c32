package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/health"
	"github.com/bulwark-go/bulwark/store"
)

func keys(t testing.TB, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return slices.Sorted(maps.Keys(m))
}

// configFields lists the fields of every *core.ConfigError in err.
func configFields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		var ce *core.ConfigError
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		default:
			if errors.As(err, &ce) {
				out = append(out, ce.Field)
			}
		}
	}
	walk(err)
	slices.Sort(out)
	return out
}

func TestConfigErrors(t *testing.T) {
	m := newManager(t, core.NewFakeClock(seedTime))
	with := func(c admin.Config) admin.Config { c.Manager = m; return c }
	var (
		nilRedis    *store.RedisStore
		nilCluster  *fakeCluster
		nilSettings *fakeSettings
		noCluster   admin.ClusterController // a nil interface: no cluster
	)
	cases := []struct {
		name   string
		cfg    admin.Config
		fields []string // nil: valid
	}{
		{"only a Manager", with(admin.Config{}), nil},
		{"nil optional dependencies", with(admin.Config{Cluster: noCluster, Health: nil, Alerts: nil, Settings: nil}), nil},
		{"every limit at its bound", with(admin.Config{MaxSubscribers: 10_000, SubscriberBuffer: 4096, EventHistory: 10_000,
			PingInterval: time.Hour, WriteTimeout: 5 * time.Minute, SnapshotInterval: 10 * time.Millisecond, Token: strings.Repeat("t", 16)}), nil},
		{"no Manager", admin.Config{}, []string{"admin.Config.Manager"}},
		{"short token", with(admin.Config{Token: "short"}), []string{"admin.Config.Token"}},
		{"long token", with(admin.Config{Token: strings.Repeat("t", 1025)}), []string{"admin.Config.Token"}},
		{"token with a space", with(admin.Config{Token: "has a space in it, sadly"}), []string{"admin.Config.Token"}},
		{"relative prefix", with(admin.Config{Prefix: "admin"}), []string{"admin.Config.Prefix"}},
		{"prefix with a query", with(admin.Config{Prefix: "/admin?x"}), []string{"admin.Config.Prefix"}},
		{"typed nil store", with(admin.Config{Cluster: nilRedis}), []string{"admin.Config.Cluster"}},
		{"typed nil cluster", with(admin.Config{Cluster: nilCluster}), []string{"admin.Config.Cluster"}},
		{"typed nil settings", with(admin.Config{Settings: nilSettings}), []string{"admin.Config.Settings"}},
		{"bad origin pattern", with(admin.Config{OriginPatterns: []string{"ok.example.com", "[bad"}}), []string{"admin.Config.OriginPatterns[1]"}},
		{"empty origin pattern", with(admin.Config{OriginPatterns: []string{""}}), []string{"admin.Config.OriginPatterns[0]"}},
		{"negative MaxSubscribers", with(admin.Config{MaxSubscribers: -1}), []string{"admin.Config.MaxSubscribers"}},
		{"huge MaxSubscribers", with(admin.Config{MaxSubscribers: 10_001}), []string{"admin.Config.MaxSubscribers"}},
		{"huge SubscriberBuffer", with(admin.Config{SubscriberBuffer: 1 << 20}), []string{"admin.Config.SubscriberBuffer"}},
		{"negative EventHistory", with(admin.Config{EventHistory: -3}), []string{"admin.Config.EventHistory"}},
		{"negative PingInterval", with(admin.Config{PingInterval: -time.Second}), []string{"admin.Config.PingInterval"}},
		{"long WriteTimeout", with(admin.Config{WriteTimeout: time.Hour}), []string{"admin.Config.WriteTimeout"}},
		{"tiny SnapshotInterval", with(admin.Config{SnapshotInterval: time.Microsecond}), []string{"admin.Config.SnapshotInterval"}},
		{"every field at once", admin.Config{
			Prefix: "x", Token: "short", Cluster: nilRedis, Settings: nilSettings, OriginPatterns: []string{"["},
			MaxSubscribers: -1, SubscriberBuffer: -1, EventHistory: -1,
			PingInterval: -1, WriteTimeout: -1, SnapshotInterval: -1,
		}, []string{
			"admin.Config.Cluster", "admin.Config.EventHistory", "admin.Config.Manager", "admin.Config.MaxSubscribers",
			"admin.Config.OriginPatterns[0]", "admin.Config.PingInterval", "admin.Config.Prefix", "admin.Config.Settings",
			"admin.Config.SnapshotInterval", "admin.Config.SubscriberBuffer", "admin.Config.Token",
			"admin.Config.WriteTimeout",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := admin.New(c.cfg)
			if c.fields == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if err := h.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				_ = h.Close(context.Background())
				t.Fatal("accepted")
			}
			var ce *core.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, core.ErrInvalidConfig) {
				t.Fatalf("not a *core.ConfigError: %T %v", err, err)
			}
			if got := configFields(err); !slices.Equal(got, c.fields) {
				t.Fatalf("fields %q, want %q (%v)", got, c.fields, err)
			}
			if strings.Contains(err.Error(), "sadly") {
				t.Fatalf("the token leaked into the error: %v", err)
			}
		})
	}
}

// world is a service in a few states, inside a synctest bubble: a Manager
// on a fake clock with bulkheads, an SLO, the per-user bulkhead, a health
// monitor whose check fails, and an active alert.
type world struct {
	clock  *core.FakeClock
	m      *core.Manager
	mon    *health.Monitor
	alerts *alert.Manager
	h      *admin.Handler
}

const (
	usersEP  = "GET /users/{id}"
	ordersEP = "POST /orders"
	healthEP = "GET /health"
	invEP    = "GET /inventory"
)

func newWorld(t *testing.T, cfg admin.Config) *world {
	t.Helper()
	w := &world{clock: core.NewFakeClock(seedTime)}
	w.m = newManager(t, w.clock, core.ManagerConfig{
		Endpoints: map[string]core.EndpointConfig{
			usersEP: {
				Bulkhead: &core.BulkheadConfig{MaxConcurrentRequests: 4, MaxQueueSize: 2},
				SLO:      &core.SLOConfig{ErrorBudgetPercent: 50},
			},
		},
		PerUser: &core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 2, MaxQueueSize: core.NoQueue}, TopN: 3},
	})
	users, err := w.m.Endpoint(usersEP)
	if err != nil {
		t.Fatal(err)
	}
	g, err := users.Bulkhead().TryAcquire()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Release)
	for i := range 10 {
		users.SLO().Record(i != 0) // 1 failure in 10 against a budget of 5
	}
	for range 3 {
		users.Breaker().RecordFailure() // opens: 3 consecutive failures
	}
	breaker(t, w.m, ordersEP).ForceOpen("maintenance")
	breaker(t, w.m, healthEP).RecordSuccess()
	if !breaker(t, w.m, invEP).Hold("health tcp://inventory-db:5432", "inventory-db down", time.Minute) {
		t.Fatal("hold refused")
	}

	// Five users, alice to erin, holding 1 or 2 slots; bob is refused once.
	pu := w.m.PerUser()
	for i, user := range []string{"alice", "bob", "carol", "dave", "erin"} {
		for range 1 + i%2 {
			g, err := pu.TryAcquire(user)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(g.Release)
		}
	}
	if _, err := pu.TryAcquire("bob"); !errors.Is(err, core.ErrBulkheadFull) {
		t.Fatalf("bob's third call: %v", err)
	}

	w.mon, err = health.NewMonitor(health.MonitorConfig{Manager: w.m, Clock: w.clock, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.mon.Close(context.Background()) })
	probe, err := health.NewCustomProbe(health.CustomProbeConfig{Name: "custom://orders-db", Checker: health.CheckerFunc(func(context.Context) error {
		return errors.New("connection refused")
	})})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.mon.Watch(ordersEP, probe, health.WatchConfig{Interval: time.Second}); err != nil {
		t.Fatal(err)
	}
	synctest.Wait() // the first check has run

	w.alerts, err = alert.NewManager(alert.ManagerConfig{Clock: w.clock, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.alerts.Close(context.Background()) })
	w.alerts.Fire(alert.Alert{Severity: alert.Critical, Message: "breaker opened",
		Type: alert.Type{Metadata: map[string]string{alert.MetaEndpoint: usersEP}}})

	cfg.Manager, cfg.Health, cfg.Alerts = w.m, w.mon, w.alerts
	w.h, _ = newHandler(t, cfg)
	return w
}

// statusBody decodes the parts of a status the tests look into.
type statusBody struct {
	Seq       uint64                       `json:"seq"`
	Breakers  []map[string]json.RawMessage `json:"breakers"`
	Bulkheads []map[string]json.RawMessage `json:"bulkheads"`
	PerUser   *struct {
		Users         int    `json:"users"`
		MaxUsers      int    `json:"max_users"`
		Active        int    `json:"active"`
		Rejected      uint64 `json:"rejected"`
		MaxConcurrent int    `json:"max_concurrent"`
		TopUsers      []struct {
			User   string `json:"user"`
			Active int    `json:"active"`
		} `json:"top_users"`
	} `json:"per_user"`
	SLOs   []core.SLOStatus `json:"slos"`
	Health json.RawMessage  `json:"health"`
	Alerts []alert.Alert    `json:"alerts"`
}

func TestStatusShape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, admin.Config{})
		w.clock.Advance(9*time.Second + 300*time.Millisecond)
		synctest.Wait() // the health check due meanwhile has run
		r := serve(t, w.h, "GET", "/status", "", "")
		if r.code != 200 || !strings.HasPrefix(r.hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("status %d %s: %s", r.code, r.hdr.Get("Content-Type"), r.body)
		}
		if got, want := keys(t, r.body), []string{"adaptive_limits", "alerts", "breakers", "bulkheads", "faults", "generated_at", "health", "per_user", "per_user_rate_limit", "rate_limits", "seq", "slos"}; !slices.Equal(got, want) {
			t.Fatalf("top-level keys %v, want %v", got, want)
		}
		var st statusBody
		r.json(t, &st)

		// Breakers, sorted: GET /health, GET /inventory, GET /users/{id}, POST /orders.
		if len(st.Breakers) != 4 {
			t.Fatalf("breakers: %d", len(st.Breakers))
		}
		open := st.Breakers[2]
		for _, k := range []string{"endpoint", "state", "reason", "consecutive_failures", "total_requests", "failed_requests",
			"rejected_requests", "injected_failures", "failure_rate", "slow_call_rate", "open_until", "retry_after_seconds", "window_requests"} {
			if _, ok := open[k]; !ok {
				t.Errorf("breaker lacks %q: %v", k, slices.Sorted(maps.Keys(open)))
			}
		}
		if string(open["state"]) != `"Open"` || string(open["retry_after_seconds"]) != "21" || string(open["failure_rate"]) != "100" {
			t.Errorf("open breaker: state %s, retry after %s, failure rate %s", open["state"], open["retry_after_seconds"], open["failure_rate"])
		}
		if b := st.Breakers[3]; string(b["state"]) != `"ForcedOpen"` || string(b["retry_after_seconds"]) != "0" || b["held_by"] != nil {
			t.Errorf("an operator's hold: %v", b)
		}
		held := st.Breakers[1]
		if string(held["state"]) != `"ForcedOpen"` || string(held["held_by"]) != `"health tcp://inventory-db:5432"` ||
			string(held["hold_until"]) != `"2025-10-08T12:01:00Z"` {
			t.Errorf("a component's hold: held_by %s, hold_until %s", held["held_by"], held["hold_until"])
		}

		if len(st.Bulkheads) != 1 || string(st.Bulkheads[0]["endpoint"]) != `"GET /users/{id}"` || string(st.Bulkheads[0]["active"]) != "1" {
			t.Errorf("bulkheads: %v", st.Bulkheads)
		}
		for _, k := range []string{"endpoint", "active", "queued", "max_concurrent", "max_queue", "total", "rejected", "timed_out"} {
			if _, ok := st.Bulkheads[0][k]; !ok {
				t.Errorf("bulkhead lacks %q", k)
			}
		}

		// The error budget is a ratio: 1 failure of the 5 allowed leaves 0.8.
		if len(st.SLOs) != 1 {
			t.Fatalf("slos: %+v", st.SLOs)
		}
		if s := st.SLOs[0]; s.Endpoint != usersEP || s.SuccessRate != 0.9 || s.ErrorBudgetRemaining < 0.799 || s.ErrorBudgetRemaining > 0.801 || s.Violated {
			t.Errorf("slo: %+v", s)
		}

		// Health is the monitor's own JSON.
		want, err := json.Marshal(w.mon.Statuses())
		if err != nil {
			t.Fatal(err)
		}
		if string(st.Health) != string(want) {
			t.Errorf("health\n got %s\nwant %s", st.Health, want)
		}
		var hs []health.Status
		if err := json.Unmarshal(st.Health, &hs); err != nil || len(hs) != 1 || hs[0].Endpoint != ordersEP || hs[0].ConsecutiveFailures != 2 {
			t.Errorf("health: %v %s", err, st.Health)
		}

		// The per-user bulkhead: totals, and the busiest TopN users.
		u := st.PerUser
		if u == nil || u.Users != 5 || u.MaxUsers != 10_000 || u.Active != 7 || u.Rejected != 1 || u.MaxConcurrent != 2 {
			t.Fatalf("per_user: %+v", u)
		}
		if len(u.TopUsers) != 3 || u.TopUsers[0].Active != 2 || u.TopUsers[2].Active != 1 {
			t.Fatalf("top users: %+v", u.TopUsers)
		}
		if len(st.Alerts) != 1 || st.Alerts[0].Severity != alert.Critical {
			t.Errorf("alerts: %+v", st.Alerts)
		}
	})
}

func TestStatusWithoutOptionalParts(t *testing.T) {
	h, m := newHandler(t, admin.Config{})
	breaker(t, m, "api")
	r := serve(t, h, "GET", "/status", "", "")
	for _, want := range []string{`"per_user":null`, `"bulkheads":[]`, `"slos":[]`, `"health":[]`, `"alerts":[]`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("status lacks %s: %s", want, r.body)
		}
	}
}

// Rate limits and adaptive limits are in the status, per endpoint and in
// the full list, with the per-user rate limit's totals (and no user).
func TestStatusRateAndAdaptiveLimits(t *testing.T) {
	m, err := core.NewManager(core.ManagerConfig{
		Clock: core.NewFakeClock(seedTime),
		Endpoints: map[string]core.EndpointConfig{"GET /search": {
			RateLimit: &core.RateLimitConfig{Rate: 5, Burst: 2},
			Adaptive:  &core.AdaptiveConfig{MinLimit: 1, MaxLimit: 1, InitialLimit: 1},
		}, "GET /shared": {
			RateLimit: &core.RateLimitConfig{Rate: 100, Burst: 20, Shared: true},
		}},
		PerUserRateLimit: &core.PerUserRateLimitConfig{RateLimit: core.RateLimitConfig{Rate: 1, Burst: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h, _ := newHandler(t, admin.Config{Manager: m})
	e, _ := m.Endpoint("GET /search")
	for range 3 {
		_ = e.RateLimiter().Allow()
	}
	p, _ := e.Adaptive().TryAcquire(0)
	defer p.Done(core.Success, 0)
	_, _ = e.Adaptive().TryAcquire(0)
	_, _ = m.PerUserRateLimiter().Allow("alice"), m.PerUserRateLimiter().Allow("alice")

	var st struct {
		RateLimits     []map[string]any `json:"rate_limits"`
		AdaptiveLimits []map[string]any `json:"adaptive_limits"`
		UserRateLimit  map[string]any   `json:"per_user_rate_limit"`
	}
	r := serve(t, h, "GET", "/status", "", "")
	r.json(t, &st)
	if len(st.RateLimits) != 1 || st.RateLimits[0]["endpoint"] != "GET /search" || st.RateLimits[0]["allowed"] != 2.0 ||
		st.RateLimits[0]["refused"] != 1.0 || st.RateLimits[0]["rate"] != 5.0 {
		t.Errorf("rate_limits: %v", st.RateLimits)
	}
	if _, ok := st.RateLimits[0]["shared"]; ok {
		t.Errorf("a limit not shared says shared: %v", st.RateLimits[0])
	}
	if _, ok := st.RateLimits[0]["share"]; ok {
		t.Errorf("a limit not shared has a share: %v", st.RateLimits[0])
	}
	if len(st.AdaptiveLimits) != 1 || st.AdaptiveLimits[0]["limit"] != 1.0 || st.AdaptiveLimits[0]["in_flight"] != 1.0 ||
		fmt.Sprint(st.AdaptiveLimits[0]["shed"]) != "[1]" {
		t.Errorf("adaptive_limits: %v", st.AdaptiveLimits)
	}
	if u := st.UserRateLimit; u == nil || u["allowed"] != 1.0 || u["refused"] != 1.0 || u["users"] != 1.0 {
		t.Errorf("per_user_rate_limit: %v", u)
	}
	if strings.Contains(string(r.body), "alice") {
		t.Errorf("a user ID in the status: %s", r.body)
	}
	var es struct {
		RateLimit map[string]any `json:"rate_limit"`
		Adaptive  map[string]any `json:"adaptive_limit"`
	}
	serve(t, h, "GET", "/status/"+url.PathEscape("GET /search"), "", "").json(t, &es)
	if es.RateLimit["refused"] != 1.0 || es.Adaptive["admitted"] != 1.0 {
		t.Errorf("endpoint status: rate_limit %v, adaptive_limit %v", es.RateLimit, es.Adaptive)
	}

	// A shared limit says so, with this instance's part: all of it until
	// a store sets it.
	shared, _ := m.Endpoint("GET /shared")
	serve(t, h, "GET", "/status/"+url.PathEscape("GET /shared"), "", "").json(t, &es)
	if es.RateLimit["shared"] != true || es.RateLimit["share"] != 1.0 || es.RateLimit["rate"] != 100.0 {
		t.Errorf("shared rate_limit alone: %v", es.RateLimit)
	}
	core.QuotaOf(shared.RateLimiter()).SetShare(0.25)
	var all struct {
		RateLimits []map[string]any `json:"rate_limits"`
	}
	serve(t, h, "GET", "/status", "", "").json(t, &all)
	if rl := all.RateLimits; len(rl) != 2 || rl[1]["endpoint"] != "GET /shared" || rl[1]["shared"] != true ||
		rl[1]["share"] != 0.25 || rl[1]["rate"] != 25.0 || rl[1]["burst"] != 5.0 {
		t.Errorf("rate_limits with a quarter share: %v", rl)
	}
}

func TestEndpointStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, admin.Config{})
		for _, path := range []string{url.PathEscape(usersEP), strings.ReplaceAll(url.PathEscape(usersEP), "%2F", "/")} {
			r := serve(t, w.h, "GET", "/status/"+path, "", "")
			if r.code != 200 {
				t.Fatalf("%s: %d %s", path, r.code, r.body)
			}
			var es struct {
				Endpoint string          `json:"endpoint"`
				Breaker  *core.Snapshot  `json:"breaker"`
				Bulkhead json.RawMessage `json:"bulkhead"`
				SLO      *core.SLOStatus `json:"slo"`
				Health   []health.Status `json:"health"`
				Alerts   []alert.Alert   `json:"alerts"`
			}
			r.json(t, &es)
			if es.Endpoint != usersEP || es.Breaker == nil || es.Breaker.State != events.Open || string(es.Bulkhead) == "null" || es.SLO == nil ||
				len(es.Alerts) != 1 || len(es.Health) != 0 {
				t.Fatalf("%s: %s", path, r.body)
			}
			if strings.Contains(string(r.body), "alice") || strings.Contains(string(r.body), "settings") {
				t.Fatalf("users or settings in the endpoint's status: %s", r.body)
			}
		}
		r := serve(t, w.h, "GET", "/status/"+url.PathEscape(ordersEP), "", "")
		var es struct {
			Health []health.Status `json:"health"`
		}
		r.json(t, &es)
		if r.code != 200 || len(es.Health) != 1 || es.Health[0].Probe != "custom://orders-db" {
			t.Fatalf("endpoint with a health check: %d %s", r.code, r.body)
		}
		r = serve(t, w.h, "GET", "/status/"+url.PathEscape("GET /nope"), "", "")
		if r.code != 404 || !strings.Contains(r.errorText(t), `unknown endpoint "GET /nope"`) {
			t.Fatalf("unknown: %d %s", r.code, r.body)
		}
		if r := serve(t, w.h, "GET", "/status/bad%00name", "", ""); r.code != 400 || !strings.Contains(r.errorText(t), "invalid endpoint") {
			t.Fatalf("invalid name: %d %s", r.code, r.body)
		}
		if r := serve(t, w.h, "GET", "/status/"+strings.Repeat("a", 257), "", ""); r.code != 400 {
			t.Fatalf("long name: %d", r.code)
		}
		if _, ok := w.m.Lookup("GET /nope"); ok {
			t.Fatal("a status request made an endpoint")
		}
	})
}

func TestEventsHistory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, m := newHandler(t, admin.Config{EventHistory: 3})
		b := breaker(t, m, "api-service")
		for range 3 {
			b.ForceOpen("drill")
			b.Reset()
		}
		synctest.Wait()
		r := serve(t, h, "GET", "/events", "", "")
		var ev struct {
			Seq    uint64            `json:"seq"`
			Events []json.RawMessage `json:"events"`
		}
		r.json(t, &ev)
		if r.code != 200 || ev.Seq != 6 || len(ev.Events) != 3 {
			t.Fatalf("%d %s", r.code, r.body)
		}
		for i, raw := range ev.Events {
			var m struct {
				Type string `json:"type"`
				Seq  uint64 `json:"seq"`
			}
			if err := json.Unmarshal(raw, &m); err != nil || m.Type != "state_change" || m.Seq != uint64(4+i) {
				t.Fatalf("event %d: %s", i, raw)
			}
		}
		serve(t, h, "GET", "/events?since=5", "", "").json(t, &ev)
		if len(ev.Events) != 1 {
			t.Fatalf("since=5: %d events", len(ev.Events))
		}
		if r := serve(t, h, "GET", "/events?since=-1", "", ""); r.code != 400 || !strings.Contains(r.errorText(t), "since") {
			t.Fatalf("bad since: %d %s", r.code, r.body)
		}
	})
}

// controlBody decodes a control answer.
type controlBody struct {
	Endpoint string        `json:"endpoint"`
	Action   string        `json:"action"`
	Scope    string        `json:"scope"`
	Breaker  core.Snapshot `json:"breaker"`
}

func TestControlAuth(t *testing.T) {
	t.Run("no token configured", func(t *testing.T) {
		h, m := newHandler(t, admin.Config{})
		b := breaker(t, m, "api")
		r := serve(t, h, "POST", "/breakers/api", "anything-at-all-here", `{"action":"force_open"}`)
		if r.code != 403 || !strings.Contains(r.errorText(t), "admin.Config.Token") {
			t.Fatalf("%d %s", r.code, r.body)
		}
		if b.State() != events.Closed {
			t.Fatal("applied without a token")
		}
	})
	h, m := newHandler(t, admin.Config{Token: testToken})
	b := breaker(t, m, usersEP)
	u := "/breakers/" + url.PathEscape(usersEP)
	for _, tok := range []string{"", "wrong-token-wrong-token", testToken + "x", testToken[:len(testToken)-1]} {
		r := serve(t, h, "POST", u, tok, `{"action":"force_open"}`)
		if r.code != 401 || r.hdr.Get("WWW-Authenticate") == "" {
			t.Fatalf("token %q: %d %s", tok, r.code, r.body)
		}
	}
	if r := serve(t, h, "POST", u, "", `{"action":"force_open"}`, "Authorization", "Basic "+testToken); r.code != 401 {
		t.Fatalf("basic auth: %d", r.code)
	}
	if b.State() != events.Closed {
		t.Fatal("applied with a bad token")
	}
	// Reads need the token too once one is configured.
	for _, p := range []string{"/status", "/events", "/status/" + url.PathEscape(usersEP)} {
		if r := serve(t, h, "GET", p, "", ""); r.code != 401 {
			t.Fatalf("%s without token: %d", p, r.code)
		}
	}

	steps := []struct {
		action string
		want   events.State
	}{
		{"force_open", events.ForcedOpen}, {"disable", events.Disabled}, {"reset", events.Closed},
	}
	for _, s := range steps {
		r := serve(t, h, "POST", u, testToken, `{"action":"`+s.action+`","reason":"incident 42"}`, "Content-Type", "application/json")
		if r.code != 200 {
			t.Fatalf("%s: %d %s", s.action, r.code, r.body)
		}
		var cr controlBody
		r.json(t, &cr)
		if cr.Scope != "local" || cr.Breaker.State != s.want || cr.Action != s.action || cr.Endpoint != usersEP {
			t.Fatalf("%s: %s", s.action, r.body)
		}
		// Visible in the status.
		var st struct{ Breakers []core.Snapshot }
		serve(t, h, "GET", "/status", testToken, "").json(t, &st)
		if len(st.Breakers) != 1 || st.Breakers[0].State != s.want {
			t.Fatalf("%s: status shows %+v", s.action, st.Breakers)
		}
		if s.action == "force_open" && !strings.Contains(st.Breakers[0].Reason, "incident 42") {
			t.Fatalf("reason not recorded: %q", st.Breakers[0].Reason)
		}
	}

	t.Run("public read", func(t *testing.T) {
		h, m := newHandler(t, admin.Config{Token: testToken, PublicRead: true})
		breaker(t, m, "api")
		if r := serve(t, h, "GET", "/status", "", ""); r.code != 200 {
			t.Fatalf("status: %d", r.code)
		}
		if r := serve(t, h, "POST", "/breakers/api", "", `{"action":"reset"}`); r.code != 401 {
			t.Fatalf("control without token: %d", r.code)
		}
	})
}

func TestControlBadBodies(t *testing.T) {
	h, m := newHandler(t, admin.Config{Token: testToken})
	b := breaker(t, m, "api")
	u := "/breakers/api"
	cases := []struct {
		body, want string
		code       int
	}{
		{`{"action":"force_open","extra":1}`, `unknown field "extra"`, 400},
		{`{"action":"explode"}`, `"action" "explode" is not one of force_open, reset, disable`, 400},
		{`{"reason":"why"}`, `"action" is required`, 400},
		{`{"action":"reset"}{"action":"reset"}`, "exactly one JSON object", 400},
		{`{"action":"reset"} 7`, "exactly one JSON object", 400},
		{`action=reset`, "not valid JSON", 400},
		{`{"action":"reset"`, "ends too early", 400},
		{``, "body is empty", 400},
		{`[1,2]`, "must be a JSON object", 400},
		{`{"action":7}`, `"action" must be a string`, 400},
		{`{"action":"force_open","reason":"` + strings.Repeat("r", 257) + `"}`, "more than the 256 allowed", 400},
		{`{"action":"force_open","reason":"line\nbreak"}`, "printable", 400},
		{`{"action":"force_open","reason":"` + strings.Repeat("x", 4096) + `"}`, "larger than 4096 bytes", 413},
		{`{"action":"reset"}` + strings.Repeat(" ", 4096), "larger than 4096 bytes", 413},
	}
	for _, c := range cases {
		r := serve(t, h, "POST", u, testToken, c.body)
		if r.code != c.code || !strings.Contains(r.errorText(t), c.want) {
			t.Errorf("body %.40q: %d %s, want %d %q", c.body, r.code, r.body, c.code, c.want)
		}
	}
	if r := serve(t, h, "POST", u, testToken, `{"action":"reset"}`, "Content-Type", "text/plain"); r.code != 415 {
		t.Errorf("text/plain: %d", r.code)
	}
	if b.State() != events.Closed {
		t.Fatalf("a bad body changed the breaker: %s", b.State())
	}
	r := serve(t, h, "POST", "/breakers/"+url.PathEscape("GET /nope"), testToken, `{"action":"reset"}`)
	if r.code != 404 || !strings.Contains(r.errorText(t), `"GET /nope"`) {
		t.Fatalf("unknown endpoint: %d %s", r.code, r.body)
	}
	if _, ok := m.Lookup("GET /nope"); ok {
		t.Fatal("control created an endpoint")
	}
	if r := serve(t, h, "GET", u, testToken, ""); r.code != 405 || r.hdr.Get("Allow") != "POST" {
		t.Fatalf("GET on control: %d %v", r.code, r.hdr)
	}
}

type fakeCluster struct {
	mu    sync.Mutex
	calls []string
	fail  error
	m     *core.Manager
}

func (c *fakeCluster) call(op, endpoint, reason string, apply func(*core.Breaker)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, op+" "+endpoint+" "+reason)
	if c.fail != nil {
		return c.fail
	}
	e, _ := c.m.Lookup(endpoint)
	apply(e.Breaker())
	return nil
}

func (c *fakeCluster) ForceOpen(_ context.Context, e, r string) error {
	return c.call("ForceOpen", e, r, func(b *core.Breaker) { b.ForceOpen(r) })
}
func (c *fakeCluster) Reset(_ context.Context, e string) error {
	return c.call("Reset", e, "", func(b *core.Breaker) { b.Reset() })
}
func (c *fakeCluster) Disable(_ context.Context, e string) error {
	return c.call("Disable", e, "", func(b *core.Breaker) { b.Disable() })
}

func TestControlThroughCluster(t *testing.T) {
	m := newManager(t, core.NewFakeClock(seedTime))
	cl := &fakeCluster{m: m}
	h, _ := newHandler(t, admin.Config{Manager: m, Token: testToken, Cluster: cl})
	b := breaker(t, m, "api")
	for _, a := range []string{"force_open", "reset", "disable"} {
		r := serve(t, h, "POST", "/breakers/api", testToken, `{"action":"`+a+`","reason":"drill"}`)
		var cr controlBody
		r.json(t, &cr)
		if r.code != 200 || cr.Scope != "cluster" {
			t.Fatalf("%s: %d %s", a, r.code, r.body)
		}
	}
	want := []string{"ForceOpen api drill", "Reset api ", "Disable api "}
	if !slices.Equal(cl.calls, want) {
		t.Fatalf("calls %q", cl.calls)
	}
	if b.State() != events.Disabled {
		t.Fatalf("state %s", b.State())
	}
	cl.fail = errors.New("redis: connection refused")
	r := serve(t, h, "POST", "/breakers/api", testToken, `{"action":"reset"}`)
	if r.code != 502 || !strings.Contains(r.errorText(t), "connection refused") || !strings.Contains(r.errorText(t), "breaker is Disabled") {
		t.Fatalf("cluster failure: %d %s", r.code, r.body)
	}
}

func TestRoutingAndPage(t *testing.T) {
	f := newFixture(t, admin.Config{})
	r := do(t, "GET", f.srv.URL+"/", "", "")
	if r.code != 200 || !strings.HasPrefix(r.hdr.Get("Content-Type"), "text/html") ||
		!strings.Contains(r.hdr.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("page: %d %v", r.code, r.hdr)
	}
	page := string(r.body)
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, `src="/`) || strings.Contains(page, `href="/`) {
		t.Fatal("the page references an absolute or external URL")
	}
	for _, asset := range []string{"ui/app.js", "ui/app.css"} {
		r := do(t, "GET", f.srv.URL+"/"+asset, "", "")
		if r.code != 200 || len(r.body) < 1000 {
			t.Fatalf("%s: %d", asset, r.code)
		}
		if s := string(r.body); strings.Contains(s, "http://") || strings.Contains(s, "https://") || strings.Contains(s, "//cdn") {
			t.Fatalf("%s references an external URL", asset)
		}
	}
	for _, p := range []string{"/ui/", "/ui/nope.js", "/nope", "/status2", "/breakers", "/config", "/../etc/passwd"} {
		if r := do(t, "GET", f.srv.URL+p, "", ""); r.code != 404 && r.code != 405 {
			t.Errorf("%s: %d", p, r.code)
		}
	}
	if r := do(t, "DELETE", f.srv.URL+"/status", "", ""); r.code != 405 || r.hdr.Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE status: %d", r.code)
	}
	if r := do(t, "GET", f.srv.URL+"/config/api", "", ""); r.code != 405 || r.hdr.Get("Allow") != "PUT, DELETE" {
		t.Errorf("GET config: %d %q", r.code, r.hdr.Get("Allow"))
	}
	if r := do(t, "HEAD", f.srv.URL+"/status", "", ""); r.code != 200 {
		t.Errorf("HEAD status: %d", r.code)
	}
	if r := do(t, "GET", f.srv.URL+"/ws", "", ""); r.code != 426 {
		t.Errorf("plain GET ws: %d", r.code)
	}

	// With a Prefix, the handler strips it itself, and redirects the bare
	// prefix to the page's directory.
	p := newFixture(t, admin.Config{Prefix: "/ops/admin/"})
	if r := do(t, "GET", p.srv.URL+"/ops/admin/status", "", ""); r.code != 200 {
		t.Fatalf("prefixed status: %d", r.code)
	}
	if r := do(t, "GET", p.srv.URL+"/ops/admin", "", ""); r.code != 301 || r.hdr.Get("Location") != "admin/" {
		t.Fatalf("bare prefix: %d %q", r.code, r.hdr.Get("Location"))
	}
	for _, path := range []string{"/status", "/ops/adminx/status", "/ops/status"} {
		if r := do(t, "GET", p.srv.URL+path, "", ""); r.code != 404 {
			t.Errorf("%s outside the prefix: %d", path, r.code)
		}
	}
}

func TestStateChangeMessageIsTheSeedShape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, m := newHandler(t, admin.Config{})
		rx, err := h.Register(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		b := breaker(t, m, "api-service")
		for range 3 {
			b.RecordFailure()
		}
		msg := <-rx.C()
		// The seed's fields, unchanged and first, then "type" and "seq".
		seed := `{"endpoint":"api-service","old_state":"Closed","new_state":"Open","timestamp":"2025-10-08T12:00:00Z","reason":"failure threshold exceeded: 3 consecutive failures"`
		if want := seed + `,"type":"state_change","seq":1}`; string(msg) != want {
			t.Fatalf("got  %s\nwant %s", msg, want)
		}
		var sc events.StateChange
		if err := json.Unmarshal(msg, &sc); err != nil || sc.NewState != events.Open || sc.Endpoint != "api-service" {
			t.Fatalf("not a StateChange: %v %+v", err, sc)
		}
	})
}

func TestReceivers(t *testing.T) {
	t.Run("a slow receiver is dropped", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, m := newHandler(t, admin.Config{SubscriberBuffer: 1})
			rx, err := h.Register(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			b := breaker(t, m, "api")
			b.ForceOpen("x")
			b.Reset()
			b.ForceOpen("y")
			synctest.Wait()
			if !errors.Is(rx.Err(), admin.ErrSlowSubscriber) {
				t.Fatalf("err %v", rx.Err())
			}
			n := 0
			for range rx.C() {
				n++
			}
			if n != 1 {
				t.Fatalf("drained %d, want the 1 buffered", n)
			}
			if n := admin.Subscribers(h); n != 0 {
				t.Fatalf("%d subscribers left", n)
			}
		})
	})
	t.Run("a receiver ends with its context", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, m := newHandler(t, admin.Config{})
			ctx, cancel := context.WithCancel(context.Background())
			rx, err := h.Register(ctx)
			if err != nil {
				t.Fatal(err)
			}
			breaker(t, m, "api").ForceOpen("x")
			if msg := <-rx.C(); !strings.Contains(string(msg), `"new_state":"ForcedOpen"`) {
				t.Fatalf("%s", msg)
			}
			cancel()
			synctest.Wait()
			if _, ok := <-rx.C(); ok {
				t.Fatal("the channel is still open")
			}
			if !errors.Is(rx.Err(), context.Canceled) {
				t.Fatalf("err %v", rx.Err())
			}
			rx.Close() // after the end: harmless
			if !errors.Is(rx.Err(), context.Canceled) {
				t.Fatalf("err after Close %v", rx.Err())
			}
			if _, err := h.Register(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("registered with a done context: %v", err)
			}
		})
	})
	t.Run("Close ends a receiver", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, _ := newHandler(t, admin.Config{})
			rx, err := h.Register(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rx.Err() != nil {
				t.Fatalf("live receiver: %v", rx.Err())
			}
			rx.Close()
			rx.Close()
			if _, ok := <-rx.C(); ok || !errors.Is(rx.Err(), admin.ErrClosed) {
				t.Fatalf("after Close: %v", rx.Err())
			}
		})
	})
	t.Run("the handler's Close ends every receiver", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, _ := newHandler(t, admin.Config{})
			rx1, _ := h.Register(context.Background())
			rx2, _ := h.Register(context.Background())
			if err := h.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, rx := range []*admin.Receiver{rx1, rx2} {
				if _, ok := <-rx.C(); ok || !errors.Is(rx.Err(), admin.ErrClosed) {
					t.Fatalf("after the handler's Close: %v", rx.Err())
				}
			}
			if _, err := h.Register(context.Background()); !errors.Is(err, admin.ErrClosed) {
				t.Fatalf("register after Close: %v", err)
			}
			if err := h.Close(context.Background()); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		})
	})
	t.Run("subscriber bound", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, _ := newHandler(t, admin.Config{MaxSubscribers: 2})
			rx1, err1 := h.Register(t.Context())
			_, err2 := h.Register(t.Context())
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if _, err := h.Register(t.Context()); !errors.Is(err, admin.ErrTooManySubscribers) {
				t.Fatalf("third receiver: %v", err)
			}
			rx1.Close()
			if _, err := h.Register(t.Context()); err != nil {
				t.Fatalf("after one left: %v", err)
			}
		})
	})
	t.Run("receivers get no snapshots", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h, _ := newHandler(t, admin.Config{SnapshotInterval: 20 * time.Millisecond})
			rx, err := h.Register(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // fifty snapshot intervals, in the bubble's time
			synctest.Wait()
			if len(rx.C()) != 0 {
				t.Fatalf("a receiver got a snapshot: %s", <-rx.C())
			}
		})
	})
}

func TestMonitorBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := core.NewFakeClock(seedTime)
		h, m := newHandler(t, admin.Config{Manager: newManager(t, clock), Token: testToken})
		lone, err := core.NewBreaker(core.BreakerConfig{Name: "payments-gateway", Clock: clock})
		if err != nil {
			t.Fatal(err)
		}
		rx, err := h.Register(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		stop := h.MonitorBreaker(lone)
		h.MonitorBreaker(lone) // twice is once
		h.MonitorBreaker(nil)  // ignored
		lone.Trip("upstream 5xx")
		msg := <-rx.C()
		var sc events.StateChange
		if err := json.Unmarshal(msg, &sc); err != nil || sc.Endpoint != "payments-gateway" || sc.NewState != events.Open {
			t.Fatalf("%s", msg)
		}
		synctest.Wait()
		if len(rx.C()) != 0 {
			t.Fatalf("monitoring twice reports twice: %s", <-rx.C())
		}
		// It is in the status and can be controlled.
		var st struct{ Breakers []core.Snapshot }
		serve(t, h, "GET", "/status", testToken, "").json(t, &st)
		if len(st.Breakers) != 1 || st.Breakers[0].Endpoint != "payments-gateway" || st.Breakers[0].State != events.Open {
			t.Fatalf("status: %+v", st.Breakers)
		}
		if r := serve(t, h, "POST", "/breakers/payments-gateway", testToken, `{"action":"reset"}`); r.code != 200 || lone.State() != events.Closed {
			t.Fatalf("control: %d %s", r.code, r.body)
		}
		<-rx.C() // the reset
		stop()
		stop()
		lone.Trip("again")
		breaker(t, m, "other").Trip("on the bus")
		if msg := <-rx.C(); !strings.Contains(string(msg), `"endpoint":"other"`) {
			t.Fatalf("an unmonitored breaker's event arrived: %s", msg)
		}
		if r := serve(t, h, "GET", "/status/payments-gateway", testToken, ""); r.code != 404 {
			t.Fatalf("after stop: %d", r.code)
		}
		// The handler's Close lets monitored breakers go.
		h.MonitorBreaker(lone)
		if err := h.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		lone.Reset()
		h.MonitorBreaker(lone) // after Close: ignored
		lone.Trip("after close")
		synctest.Wait()
		if n := admin.Seq(h); n != 3 {
			t.Fatalf("seq %d after Close, want 3", n)
		}
	})
}

// A breaker made outside the Manager, followed and received in code: the
// seed's notifier API.
func TestNotifierAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h, _ := newHandler(t, admin.Config{Manager: newManager(t, core.NewFakeClock(seedTime))})
		b, err := core.NewBreaker(core.BreakerConfig{Name: "api-service", Clock: core.NewFakeClock(seedTime)})
		if err != nil {
			t.Fatal(err)
		}
		h.MonitorBreaker(b)
		rx, err := h.Register(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		b.Trip("Failure threshold exceeded")
		want := `{"endpoint":"api-service","old_state":"Closed","new_state":"Open","timestamp":"2025-10-08T12:00:00Z","reason":"Failure threshold exceeded","type":"state_change","seq":1}`
		if got := string(<-rx.C()); got != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		var ev struct{ Events []json.RawMessage }
		serve(t, h, "GET", "/events", "", "").json(t, &ev)
		if len(ev.Events) != 1 || string(ev.Events[0]) != want {
			t.Fatalf("events: %s", ev.Events)
		}
	})
}
