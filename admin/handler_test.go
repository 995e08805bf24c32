package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
)

func keys(t testing.TB, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return slices.Sorted(maps.Keys(m))
}

func TestConfigErrorsNameTheField(t *testing.T) {
	m := newManager(t, core.NewFakeClock(seedTime))
	cases := []struct {
		cfg   admin.Config
		field string
	}{
		{admin.Config{}, "admin.Config.Manager"},
		{admin.Config{Manager: m, Token: "short"}, "admin.Config.Token"},
		{admin.Config{Manager: m, Token: "has a space in it, sadly"}, "admin.Config.Token"},
		{admin.Config{Manager: m, Prefix: "admin"}, "admin.Config.Prefix"},
		{admin.Config{Manager: m, MaxSubscribers: -1}, "admin.Config.MaxSubscribers"},
		{admin.Config{Manager: m, SubscriberBuffer: 1 << 20}, "admin.Config.SubscriberBuffer"},
		{admin.Config{Manager: m, EventHistory: -3}, "admin.Config.EventHistory"},
		{admin.Config{Manager: m, TopUsers: 1000}, "admin.Config.TopUsers"},
		{admin.Config{Manager: m, PingInterval: -time.Second}, "admin.Config.PingInterval"},
		{admin.Config{Manager: m, WriteTimeout: time.Hour}, "admin.Config.WriteTimeout"},
		{admin.Config{Manager: m, SnapshotInterval: time.Microsecond}, "admin.Config.SnapshotInterval"},
		{admin.Config{Manager: m, OriginPatterns: []string{"[bad"}}, "admin.Config.OriginPatterns"},
	}
	for _, c := range cases {
		h, err := admin.New(c.cfg)
		if err == nil {
			h.Close()
			t.Errorf("%s: accepted", c.field)
			continue
		}
		if !strings.Contains(err.Error(), c.field) || !errors.Is(err, core.ErrInvalidConfig) {
			t.Errorf("%s: error %q", c.field, err)
		}
		if strings.Contains(err.Error(), "sadly") {
			t.Errorf("the token leaked into the error: %v", err)
		}
	}
	if _, err := admin.NewNotifier(admin.NotifierConfig{SubscriberBuffer: -1}); err == nil || !strings.Contains(err.Error(), "admin.NotifierConfig.SubscriberBuffer") {
		t.Errorf("notifier config: %v", err)
	}
}

// fullFixture wires every source, with a breaker in each interesting state.
func fullFixture(t *testing.T, cfg admin.Config) *fixture {
	t.Helper()
	clock := core.NewFakeClock(seedTime)
	m := newManager(t, clock)
	cfg.Manager = m
	bh, err := core.NewBulkhead("GET /users/{id}", core.BulkheadConfig{MaxConcurrentRequests: 4, MaxQueueSize: 2}, core.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := bh.TryAcquire()
	t.Cleanup(g.Release)
	cfg.Bulkheads = admin.BulkheadList{bh}
	guard, err := core.NewSLOGuard(m, core.SLOGuardConfig{}, core.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		_ = guard.RecordRequest("GET /users/{id}", i != 0)
	}
	cfg.SLO = guard
	cfg.Health = admin.HealthFunc(func() []admin.HealthStatus {
		return []admin.HealthStatus{{
			Endpoint: "POST /orders", Probe: "tcp://db:5432", Healthy: false, ConsecutiveFailures: 3,
			Last: admin.HealthResultOf(false, 12*time.Millisecond, errors.New("connection refused"), seedTime),
		}}
	})
	users := make([]admin.UserStatus, 30)
	for i := range users {
		users[i] = admin.UserStatus{User: fmt.Sprintf("user-%02d", i), Active: 30 - i, Total: uint64(100 - i)}
	}
	cfg.UserBulkheads = admin.UserBulkheadFunc(func() []admin.UserBulkheadStatus {
		return []admin.UserBulkheadStatus{{Name: "global", Users: 30, MaxUsers: 10000, TopUsers: slices.Clone(users)}}
	})
	am, err := alert.NewManager(alert.ManagerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	am.Fire(alert.Alert{Severity: alert.Critical, Message: "breaker opened",
		Type: alert.Type{Metadata: map[string]string{alert.MetaEndpoint: "GET /users/{id}"}}})
	cfg.Alerts = am
	f := newFixture(t, cfg)
	f.clock = clock

	users1 := f.breaker(t, "GET /users/{id}")
	for range 3 {
		users1.RecordFailure() // opens: 3 consecutive failures
	}
	f.breaker(t, "POST /orders").ForceOpen("maintenance")
	f.breaker(t, "GET /health").RecordSuccess()
	return f
}

func TestStatusShape(t *testing.T) {
	f := fullFixture(t, admin.Config{})
	f.clock.Advance(9*time.Second + 300*time.Millisecond)
	r := do(t, "GET", f.srv.URL+"/status", "", "")
	if r.code != 200 || !strings.HasPrefix(r.hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("status %d %s: %s", r.code, r.hdr.Get("Content-Type"), r.body)
	}
	if got, want := keys(t, r.body), []string{"alerts", "breakers", "bulkheads", "generated_at", "health", "seq", "slos", "user_bulkheads"}; !slices.Equal(got, want) {
		t.Fatalf("top-level keys %v, want %v", got, want)
	}
	var st struct {
		Breakers      []map[string]json.RawMessage `json:"breakers"`
		Bulkheads     []map[string]json.RawMessage `json:"bulkheads"`
		UserBulkheads []admin.UserBulkheadStatus   `json:"user_bulkheads"`
		SLOs          []map[string]json.RawMessage `json:"slos"`
		Health        []map[string]json.RawMessage `json:"health"`
		Alerts        []alert.Alert                `json:"alerts"`
	}
	r.json(t, &st)
	if len(st.Breakers) != 3 {
		t.Fatalf("breakers: %d", len(st.Breakers))
	}
	open := st.Breakers[1] // sorted: GET /health, GET /users/{id}, POST /orders
	for _, k := range []string{"endpoint", "state", "reason", "consecutive_failures", "total_requests", "failed_requests",
		"rejected_requests", "failure_rate", "slow_call_rate", "open_until", "retry_after_seconds", "window_requests"} {
		if _, ok := open[k]; !ok {
			t.Errorf("breaker lacks %q: %v", k, slices.Sorted(maps.Keys(open)))
		}
	}
	if string(open["state"]) != `"Open"` || string(open["retry_after_seconds"]) != "21" || string(open["failure_rate"]) != "100" {
		t.Errorf("open breaker: state %s, retry after %s, failure rate %s", open["state"], open["retry_after_seconds"], open["failure_rate"])
	}
	if string(st.Breakers[2]["state"]) != `"ForcedOpen"` || string(st.Breakers[2]["retry_after_seconds"]) != "0" {
		t.Errorf("forced breaker: %s", st.Breakers[2]["state"])
	}
	for _, k := range []string{"endpoint", "active", "queued", "max_concurrent", "max_queue", "total", "rejected", "timed_out"} {
		if _, ok := st.Bulkheads[0][k]; !ok {
			t.Errorf("bulkhead lacks %q", k)
		}
	}
	if string(st.Bulkheads[0]["active"]) != "1" {
		t.Errorf("bulkhead active %s", st.Bulkheads[0]["active"])
	}
	for _, k := range []string{"success_rate", "error_budget_remaining", "long_burn_rate", "short_burn_rate", "violated"} {
		if _, ok := st.SLOs[0][k]; !ok {
			t.Errorf("slo lacks %q", k)
		}
	}
	if string(st.SLOs[0]["success_rate"]) != "0.9" || string(st.SLOs[0]["violated"]) != "true" {
		t.Errorf("slo: %v", st.SLOs[0])
	}
	for _, k := range []string{"endpoint", "probe", "healthy", "last", "consecutive_failures", "consecutive_successes"} {
		if _, ok := st.Health[0][k]; !ok {
			t.Errorf("health lacks %q", k)
		}
	}
	if u := st.UserBulkheads[0]; len(u.TopUsers) != admin.DefaultTopUsers || u.TopUsers[0].User != "user-00" {
		t.Errorf("top users not bounded: %d", len(u.TopUsers))
	}
	if len(st.Alerts) != 1 || st.Alerts[0].Severity != alert.Critical {
		t.Errorf("alerts: %+v", st.Alerts)
	}
}

func TestEndpointStatus(t *testing.T) {
	f := fullFixture(t, admin.Config{})
	name := "GET /users/{id}"
	for _, path := range []string{url.PathEscape(name), strings.ReplaceAll(url.PathEscape(name), "%2F", "/")} {
		r := do(t, "GET", f.srv.URL+"/status/"+path, "", "")
		if r.code != 200 {
			t.Fatalf("%s: %d %s", path, r.code, r.body)
		}
		var es admin.EndpointStatus
		r.json(t, &es)
		if es.Endpoint != name || es.Breaker == nil || es.Breaker.State != core.Open || es.Bulkhead == nil || es.SLO == nil ||
			len(es.Alerts) != 1 || len(es.Health) != 0 {
			t.Fatalf("%s: %s", path, r.body)
		}
	}
	// Known only to the health source.
	if r := do(t, "GET", f.srv.URL+"/status/"+url.PathEscape("POST /orders"), "", ""); r.code != 200 {
		t.Fatalf("health-only endpoint: %d", r.code)
	}
	r := do(t, "GET", f.srv.URL+"/status/"+url.PathEscape("GET /nope"), "", "")
	if r.code != 404 || !strings.Contains(r.errorText(t), `unknown endpoint "GET /nope"`) {
		t.Fatalf("unknown: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", f.srv.URL+"/status/bad%00name", "", ""); r.code != 400 || !strings.Contains(r.errorText(t), "invalid endpoint") {
		t.Fatalf("invalid name: %d %s", r.code, r.body)
	}
	if r := do(t, "GET", f.srv.URL+"/status/"+strings.Repeat("a", core.MaxEndpointLen+1), "", ""); r.code != 400 {
		t.Fatalf("long name: %d", r.code)
	}
}

func TestEventsHistory(t *testing.T) {
	f := newFixture(t, admin.Config{EventHistory: 3})
	b := f.breaker(t, "api-service")
	for range 3 {
		b.ForceOpen("drill")
		b.Reset()
	}
	waitFor(t, "six events", func() bool { return f.h.Notifier().Seq() == 6 })
	r := do(t, "GET", f.srv.URL+"/events", "", "")
	var ev admin.EventsResponse
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
	r = do(t, "GET", f.srv.URL+"/events?since=5", "", "")
	r.json(t, &ev)
	if len(ev.Events) != 1 {
		t.Fatalf("since=5: %s", r.body)
	}
	if r := do(t, "GET", f.srv.URL+"/events?since=-1", "", ""); r.code != 400 || !strings.Contains(r.errorText(t), "since") {
		t.Fatalf("bad since: %d %s", r.code, r.body)
	}
}

func TestControlAuth(t *testing.T) {
	t.Run("no token configured", func(t *testing.T) {
		f := newFixture(t, admin.Config{})
		f.breaker(t, "api")
		r := do(t, "POST", f.srv.URL+"/breakers/api", "anything-at-all-here", `{"action":"force_open"}`)
		if r.code != 403 || !strings.Contains(r.errorText(t), "admin.Config.Token") {
			t.Fatalf("%d %s", r.code, r.body)
		}
		if st, _ := f.m.Lookup("api"); st.State() != core.Closed {
			t.Fatal("applied without a token")
		}
	})
	f := newFixture(t, admin.Config{Token: testToken})
	b := f.breaker(t, "GET /users/{id}")
	u := f.srv.URL + "/breakers/" + url.PathEscape("GET /users/{id}")
	for _, tok := range []string{"", "wrong-token-wrong-token", testToken + "x"} {
		r := do(t, "POST", u, tok, `{"action":"force_open"}`)
		if r.code != 401 || r.hdr.Get("WWW-Authenticate") == "" {
			t.Fatalf("token %q: %d %s", tok, r.code, r.body)
		}
	}
	if r := do(t, "POST", u, "", `{"action":"force_open"}`, "Authorization", "Basic "+testToken); r.code != 401 {
		t.Fatalf("basic auth: %d", r.code)
	}
	if b.State() != core.Closed {
		t.Fatal("applied with a bad token")
	}
	// Reads need the token too once one is configured.
	if r := do(t, "GET", f.srv.URL+"/status", "", ""); r.code != 401 {
		t.Fatalf("status without token: %d", r.code)
	}
	if r := do(t, "GET", f.srv.URL+"/events", "", ""); r.code != 401 {
		t.Fatalf("events without token: %d", r.code)
	}

	steps := []struct {
		action string
		want   core.State
	}{
		{"force_open", core.ForcedOpen}, {"close", core.Closed}, {"disable", core.Disabled}, {"reset", core.Closed},
	}
	for _, s := range steps {
		r := do(t, "POST", u, testToken, `{"action":"`+s.action+`","reason":"incident 42"}`, "Content-Type", "application/json")
		if r.code != 200 {
			t.Fatalf("%s: %d %s", s.action, r.code, r.body)
		}
		var cr admin.ControlResponse
		r.json(t, &cr)
		if cr.Scope != "local" || cr.Breaker.State != s.want || cr.Action != s.action {
			t.Fatalf("%s: %s", s.action, r.body)
		}
		// Visible in /status.
		var st admin.Status
		do(t, "GET", f.srv.URL+"/status", testToken, "").json(t, &st)
		if len(st.Breakers) != 1 || st.Breakers[0].State != s.want {
			t.Fatalf("%s: status shows %+v", s.action, st.Breakers)
		}
		if s.action == "force_open" && !strings.Contains(st.Breakers[0].Reason, "incident 42") {
			t.Fatalf("reason not recorded: %q", st.Breakers[0].Reason)
		}
	}

	t.Run("public read", func(t *testing.T) {
		f := newFixture(t, admin.Config{Token: testToken, PublicRead: true})
		f.breaker(t, "api")
		if r := do(t, "GET", f.srv.URL+"/status", "", ""); r.code != 200 {
			t.Fatalf("status: %d", r.code)
		}
		if r := do(t, "POST", f.srv.URL+"/breakers/api", "", `{"action":"reset"}`); r.code != 401 {
			t.Fatalf("control without token: %d", r.code)
		}
	})
}

func TestControlBadBodies(t *testing.T) {
	f := newFixture(t, admin.Config{Token: testToken})
	b := f.breaker(t, "api")
	u := f.srv.URL + "/breakers/api"
	cases := []struct {
		body, want string
		code       int
	}{
		{`{"action":"force_open","extra":1}`, `unknown field "extra"`, 400},
		{`{"action":"explode"}`, `"action" "explode" is not one of force_open, close, reset, disable`, 400},
		{`{"reason":"why"}`, `"action" is required`, 400},
		{`{"action":"reset"}{"action":"reset"}`, "exactly one JSON object", 400},
		{`{"action":"reset"} 7`, "exactly one JSON object", 400},
		{`action=reset`, "not valid JSON", 400},
		{`{"action":"reset"`, "ends too early", 400},
		{``, "body is empty", 400},
		{`[1,2]`, "must be a JSON object", 400},
		{`{"action":7}`, `"action" must be a string`, 400},
		{`{"action":"force_open","reason":"` + strings.Repeat("r", admin.MaxReasonLen+1) + `"}`, "more than the 256 allowed", 400},
		{`{"action":"force_open","reason":"line\nbreak"}`, "printable", 400},
		{`{"action":"force_open","reason":"` + strings.Repeat("x", admin.MaxBodyBytes) + `"}`, "larger than 4096 bytes", 413},
		{`{"action":"reset"}` + strings.Repeat(" ", admin.MaxBodyBytes), "larger than 4096 bytes", 413},
	}
	for _, c := range cases {
		r := do(t, "POST", u, testToken, c.body)
		if r.code != c.code || !strings.Contains(r.errorText(t), c.want) {
			t.Errorf("body %.40q: %d %s, want %d %q", c.body, r.code, r.body, c.code, c.want)
		}
	}
	if r := do(t, "POST", u, testToken, `{"action":"reset"}`, "Content-Type", "text/plain"); r.code != 415 {
		t.Errorf("text/plain: %d", r.code)
	}
	if b.State() != core.Closed {
		t.Fatalf("a bad body changed the breaker: %s", b.State())
	}
	r := do(t, "POST", f.srv.URL+"/breakers/"+url.PathEscape("GET /nope"), testToken, `{"action":"reset"}`)
	if r.code != 404 || !strings.Contains(r.errorText(t), `"GET /nope"`) {
		t.Fatalf("unknown endpoint: %d %s", r.code, r.body)
	}
	if _, ok := f.m.Lookup("GET /nope"); ok {
		t.Fatal("control created a breaker")
	}
	if r := do(t, "GET", u, testToken, ""); r.code != 405 || r.hdr.Get("Allow") != "POST" {
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
	b, _ := c.m.Lookup(endpoint)
	apply(b)
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
	f := newFixture(t, admin.Config{Manager: m, Token: testToken, Cluster: cl})
	f.breaker(t, "api")
	for _, a := range []string{"force_open", "close", "reset", "disable"} {
		r := do(t, "POST", f.srv.URL+"/breakers/api", testToken, `{"action":"`+a+`","reason":"drill"}`)
		var cr admin.ControlResponse
		r.json(t, &cr)
		if r.code != 200 || cr.Scope != "cluster" {
			t.Fatalf("%s: %d %s", a, r.code, r.body)
		}
	}
	want := []string{"ForceOpen api drill", "Reset api ", "Reset api ", "Disable api "}
	if !slices.Equal(cl.calls, want) {
		t.Fatalf("calls %q", cl.calls)
	}
	cl.fail = errors.New("redis: connection refused")
	r := do(t, "POST", f.srv.URL+"/breakers/api", testToken, `{"action":"reset"}`)
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
	for _, p := range []string{"/ui/", "/ui/nope.js", "/nope", "/status2", "/breakers", "/../etc/passwd"} {
		if r := do(t, "GET", f.srv.URL+p, "", ""); r.code != 404 && r.code != 405 {
			t.Errorf("%s: %d", p, r.code)
		}
	}
	if r := do(t, "DELETE", f.srv.URL+"/status", "", ""); r.code != 405 || r.hdr.Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE status: %d", r.code)
	}
	if r := do(t, "HEAD", f.srv.URL+"/status", "", ""); r.code != 200 {
		t.Errorf("HEAD status: %d", r.code)
	}
	if r := do(t, "GET", f.srv.URL+"/ws", "", ""); r.code != http.StatusUpgradeRequired {
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
	f := newFixture(t, admin.Config{})
	rx, err := f.h.Register(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	b := f.breaker(t, "api-service")
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
	if err := json.Unmarshal(msg, &sc); err != nil || sc.NewState != core.Open || sc.Endpoint != "api-service" {
		t.Fatalf("not a StateChange: %v %+v", err, sc)
	}
	if got := keys(t, msg); !slices.Equal(got, []string{"endpoint", "new_state", "old_state", "reason", "seq", "timestamp", "type"}) {
		t.Fatalf("keys %v", got)
	}
}

func TestManagerBulkheadsAndPerUser(t *testing.T) {
	clock := core.NewFakeClock(seedTime)
	m := newManager(t, clock)
	bh, err := m.Bulkhead("GET /users/{id}")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := bh.TryAcquire()
	defer g.Release()
	pu, err := core.NewPerUserBulkhead(core.PerUserConfig{Bulkhead: core.BulkheadConfig{MaxConcurrentRequests: 2, MaxQueueSize: core.NoQueue}}, core.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	var held []core.Guard
	for i, user := range []string{"alice", "bob", "carol", "dave", "erin"} {
		for range 1 + i%2 {
			g, err := pu.TryAcquire(user)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, g)
		}
	}
	defer func() {
		for i := range held {
			held[i].Release()
		}
	}()
	_, _ = pu.TryAcquire("bob")
	_, _ = pu.TryAcquire("bob") // bob is full: rejected

	f := newFixture(t, admin.Config{Manager: m, TopUsers: 3, UserBulkheads: admin.PerUserBulkheads{"global": pu}})
	var st admin.Status
	do(t, "GET", f.srv.URL+"/status", "", "").json(t, &st)
	if len(st.Bulkheads) != 1 || st.Bulkheads[0].Endpoint != "GET /users/{id}" || st.Bulkheads[0].Active != 1 {
		t.Fatalf("the Manager's bulkheads: %+v", st.Bulkheads)
	}
	if len(st.UserBulkheads) != 1 {
		t.Fatalf("per-user: %+v", st.UserBulkheads)
	}
	u := st.UserBulkheads[0]
	if u.Name != "global" || u.Users != 5 || u.Active != 7 || u.Rejected != 2 || len(u.TopUsers) != 3 {
		t.Fatalf("per-user: %+v", u)
	}
	if u.TopUsers[0].Active != 2 {
		t.Fatalf("busiest first: %+v", u.TopUsers)
	}
	var es admin.EndpointStatus
	do(t, "GET", f.srv.URL+"/status/"+url.PathEscape("GET /users/{id}"), "", "").json(t, &es)
	if es.Bulkhead == nil || es.Breaker != nil {
		t.Fatalf("endpoint with a bulkhead only: %+v", es)
	}
}
