package bulwark

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwark-go/bulwark/adapters/nethttp"
	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/alert"
	"github.com/bulwark-go/bulwark/core"
	"github.com/bulwark-go/bulwark/events"
	"github.com/bulwark-go/bulwark/internal/redistest"
	"github.com/bulwark-go/bulwark/internal/wait"
	"github.com/bulwark-go/bulwark/store"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newKit(t *testing.T, cfg Config) *Kit {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	k, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return k
}

// New builds every part from one Config: each part is there and they work
// together.
func TestNewBuildsEveryPart(t *testing.T) {
	var mu sync.Mutex
	var hooks []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct{ Status string }
		_ = json.NewDecoder(r.Body).Decode(&p)
		mu.Lock()
		hooks = append(hooks, p.Status)
		mu.Unlock()
	}))
	defer hook.Close()
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer healthy.Close()
	dir := t.TempDir()
	k := newKit(t, Config{
		Defaults:   core.EndpointConfig{Breaker: &core.BreakerConfig{FailureThreshold: 2}},
		Endpoints:  map[string]EndpointConfig{"deps:db": {Health: &HealthConfig{URL: healthy.URL, Interval: time.Hour}}},
		PerUser:    &core.PerUserConfig{},
		UserHeader: "X-User",
		Store:      StoreConfig{File: &store.FileConfig{Path: filepath.Join(dir, "state")}},
		Alerts:     AlertsConfig{Webhook: &alert.WebhookConfig{URL: hook.URL}},
		Admin:      admin.Config{Token: "0123456789abcdef0123"},
	})
	// The middleware with the per-user bulkhead, keyed by the header.
	mux := http.NewServeMux()
	mux.Handle("GET /fail", k.Middleware()(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })))
	for range 2 {
		r := httptest.NewRequest("GET", "/fail", nil)
		r.Header.Set("X-User", "ann")
		mux.ServeHTTP(httptest.NewRecorder(), r)
	}
	e, _ := k.Manager().Lookup("GET /fail")
	if e == nil || e.Breaker().State() != events.Open {
		t.Fatalf("the breaker did not open: %v", e)
	}
	if k.Manager().PerUser().Stats().Users != 1 {
		t.Fatal("the per-user bulkhead saw no user")
	}
	// The alert reached the webhook.
	wait.For(t, 5*time.Second, "the webhook's alert", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(hooks) == 1 && hooks[0] == "firing"
	})
	// Metrics and the admin status show it; the health check runs.
	rec := httptest.NewRecorder()
	k.Metrics().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `circuit_breaker_state{endpoint="GET /fail"} 1`) {
		t.Fatalf("metrics: %s", rec.Body)
	}
	rec = httptest.NewRecorder()
	k.Admin().ServeHTTP(rec, adminRequest("GET", "/status", ""))
	if !strings.Contains(rec.Body.String(), `"GET /fail"`) || !strings.Contains(rec.Body.String(), `"deps:db"`) {
		t.Fatalf("admin status: %d %s", rec.Code, rec.Body)
	}
	// The Transport goes through its named endpoint.
	tr, err := k.Transport("deps:db", nethttp.TransportConfig{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Get(healthy.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if e, _ := k.Manager().Lookup("deps:db"); e.Breaker().Snapshot().TotalRequests != 1 {
		t.Fatal("the transport's call did not reach its endpoint")
	}
	if _, err := k.Transport("", nethttp.TransportConfig{}); err == nil {
		t.Fatal("an empty endpoint name was accepted")
	}
}

func adminRequest(method, path, body string) *http.Request {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer 0123456789abcdef0123")
	return r
}

// New names every problem of a Config by its path, in the file when it
// came from one.
func TestNewConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{
		Defaults:  core.EndpointConfig{Breaker: &core.BreakerConfig{Timeout: time.Nanosecond}},
		Endpoints: map[string]EndpointConfig{"x": {Health: &HealthConfig{URL: "ftp://nope"}}},
		Store:     StoreConfig{File: &store.FileConfig{Path: filepath.Join(dir, "missing", "state")}},
		Logger:    quiet,
	}
	_, err := New(cfg)
	var ce *core.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "bulwark.Config.Defaults.Breaker.Timeout") {
		t.Fatalf("err = %v", err)
	}
	cfg.Defaults = core.EndpointConfig{}
	_, err = New(cfg)
	if err == nil || !strings.Contains(err.Error(), "bulwark.Config.Store.File") {
		t.Fatalf("err = %v", err)
	}
	cfg.Store = StoreConfig{}
	_, err = New(cfg)
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "bulwark.Config.Endpoints[x].Health.URL") {
		t.Fatalf("err = %v", err)
	}
	// From a file: the file's name and path.
	loaded, err := ParseConfig("b.yaml", []byte("per_user: {max_users: 10}\nadmin: {token: short}"))
	if err != nil {
		t.Fatal(err)
	}
	loaded.Logger = quiet
	_, err = New(loaded)
	if err == nil || !strings.Contains(err.Error(), "b.yaml: admin.token") {
		t.Fatalf("err = %v", err)
	}
}

// Reconfigure changes an endpoint's settings while it runs: the breaker
// keeps its state and counts, status says where the settings come from,
// the feed hears of it, and ResetConfig undoes it.
func TestReconfigure(t *testing.T) {
	cfg, err := ParseConfig("b.yaml", []byte(`
defaults: {breaker: {failure_threshold: 5, timeout: 20s}}
endpoints:
  "GET /x": {breaker: {failure_threshold: 4, timeout: 30s}}
  "GET /z": {bulkhead: {max_concurrent_requests: 3}}
`))
	if err != nil {
		t.Fatal(err)
	}
	k := newKit(t, cfg)
	sub := k.Manager().Bus().Subscribe(16)
	defer sub.Close()
	b := mustBreaker(t, k, "GET /x")
	b.RecordFailure()
	b.RecordFailure()
	if err := k.Reconfigure(context.Background(), "GET /x", []byte(`{"breaker": {"failure_threshold": 3}}`)); err != nil {
		t.Fatal(err)
	}
	c := b.Config()
	if c.FailureThreshold != 3 || c.Timeout != 30*time.Second {
		t.Fatalf("after the patch: threshold %d, timeout %v (the file's 30s must stay)", c.FailureThreshold, c.Timeout)
	}
	if s := b.Snapshot(); s.TotalRequests != 2 || s.ConsecutiveFailures != 2 {
		t.Fatalf("counts lost: %+v", s)
	}
	b.RecordFailure()
	if b.State() != events.Open {
		t.Fatal("the new threshold is not in force")
	}
	settings, src := k.EndpointSettings("GET /x")
	if src != "runtime" || !strings.Contains(string(settings), `"failure_threshold":3`) {
		t.Fatalf("settings %s from %s", settings, src)
	}
	if !heard(sub, "GET /x", "runtime") {
		t.Fatal("no config_change event")
	}
	// A bad patch changes nothing and names the key.
	err = k.Reconfigure(context.Background(), "GET /x", []byte(`{"breaker": {"failure_threshold": -1, "timout": "1s"}}`))
	if !errors.Is(err, core.ErrInvalidConfig) || !strings.Contains(err.Error(), `endpoints."GET /x".breaker.failure_threshold`) ||
		!strings.Contains(err.Error(), `endpoints."GET /x".breaker.timout`) {
		t.Fatalf("bad patch: %v", err)
	}
	if b.Config().FailureThreshold != 3 {
		t.Fatal("a refused patch changed the settings")
	}
	if err := k.Reconfigure(context.Background(), "GET /x", []byte(`{"health": {"url": "http://x"}}`)); !errors.Is(err, core.ErrInvalidConfig) {
		t.Fatalf("health at runtime: %v", err)
	}
	if err := k.ResetConfig(context.Background(), "GET /x"); err != nil {
		t.Fatal(err)
	}
	if _, src := k.EndpointSettings("GET /x"); src != "file" || b.Config().FailureThreshold != 4 {
		t.Fatalf("after ResetConfig: %s, threshold %d", src, b.Config().FailureThreshold)
	}
	// A policy the endpoint's section leaves out is changed from the
	// defaults' section, not from zero.
	if err := k.Reconfigure(context.Background(), "GET /z", []byte(`{"breaker": {"failure_threshold": 8}}`)); err != nil {
		t.Fatal(err)
	}
	if c := mustBreaker(t, k, "GET /z").Config(); c.FailureThreshold != 8 || c.Timeout != 20*time.Second {
		t.Fatalf("GET /z after the patch: threshold %d, timeout %v (the defaults' 20s must stay)", c.FailureThreshold, c.Timeout)
	}
	if _, src := k.EndpointSettings("GET /other"); src != "default" {
		t.Fatalf("an endpoint the file does not name: %s", src)
	}
	// Through the admin handler, with the token.
	k2 := newKit(t, Config{Admin: admin.Config{Token: "0123456789abcdef0123"}})
	rec := httptest.NewRecorder()
	k2.Admin().ServeHTTP(rec, adminRequest("PUT", "/config/GET%20%2Fy", `{"bulkhead": {"max_concurrent_requests": 2}}`))
	if rec.Code != 200 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}
	if e, _ := k2.Manager().Lookup("GET /y"); e == nil || e.Bulkhead() == nil || e.Bulkhead().Stats().MaxConcurrent != 2 {
		t.Fatal("PUT did not give the endpoint its bulkhead")
	}
	rec = httptest.NewRecorder()
	k2.Admin().ServeHTTP(rec, adminRequest("PUT", "/config/GET%20%2Fy", `{"bulkhead": {"max_queue_size": -5}}`))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "max_queue_size") {
		t.Fatalf("bad PUT: %d %s", rec.Code, rec.Body)
	}
}

func mustBreaker(t *testing.T, k *Kit, name string) *core.Breaker {
	t.Helper()
	e, err := k.Manager().Endpoint(name)
	if err != nil {
		t.Fatal(err)
	}
	return e.Breaker()
}

func heard(sub *events.Subscription, endpoint, source string) bool {
	for {
		select {
		case e := <-sub.C():
			if c, ok := e.(events.ConfigChange); ok && c.Endpoint == endpoint && c.Source == source {
				return true
			}
		default:
			return false
		}
	}
}

// A runtime change outlives a restart through the state file.
func TestReconfigureSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	cfg := Config{Store: StoreConfig{File: &store.FileConfig{Path: path}}, Logger: quiet}
	k, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Reconfigure(context.Background(), "GET /x", []byte(`{"breaker": {"failure_threshold": 7}}`)); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	k = newKit(t, cfg)
	if got := mustBreaker(t, k, "GET /x").Config().FailureThreshold; got != 7 {
		t.Fatalf("after a restart: threshold %d, want 7", got)
	}
	if _, src := k.EndpointSettings("GET /x"); src != "runtime" {
		t.Fatalf("source %s", src)
	}
}

// With Redis, a change made on one instance reaches the other, and
// ResetConfig undoes it on both.
func TestReconfigureAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	mk := func(id string) *Kit {
		return newKit(t, Config{Store: StoreConfig{Redis: &RedisConfig{
			URL: "redis://" + srv.Addr(), RedisConfig: store.RedisConfig{InstanceID: id, SyncInterval: 100 * time.Millisecond},
		}}})
	}
	a, b := mk("a"), mk("b")
	mustBreaker(t, b, "GET /x") // b follows the endpoint
	if err := a.Reconfigure(context.Background(), "GET /x", []byte(`{"breaker": {"failure_threshold": 9}}`)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 2*time.Second, "b to take a's change", func() bool {
		return mustBreaker(t, b, "GET /x").Config().FailureThreshold == 9
	})
	if _, src := b.EndpointSettings("GET /x"); src != "runtime" {
		t.Fatalf("b's source: %s", src)
	}
	if err := a.ResetConfig(context.Background(), "GET /x"); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 2*time.Second, "b to undo it", func() bool {
		return mustBreaker(t, b, "GET /x").Config().FailureThreshold == 5
	})
}

// The per-user rate limit comes from the file, and needs to know who the
// user is.
func TestPerUserRateLimitFromTheFile(t *testing.T) {
	cfg, err := ParseConfig("b.yaml", []byte("user_header: X-User\nper_user_rate_limit: {rate_limit: {rate: 1, burst: 1}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := newKit(t, cfg)
	mux := http.NewServeMux()
	mux.Handle("GET /x", k.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	codes := []int{}
	for range 2 {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/x", nil)
		req.Header.Set("X-User", "alice")
		mux.ServeHTTP(rec, req)
		codes = append(codes, rec.Code)
	}
	if codes[0] != 200 || codes[1] != 429 {
		t.Fatalf("alice's two requests at 1/s: %v, want 200 then 429", codes)
	}
	cfg.UserHeader = ""
	if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "b.yaml: user_header: is required with PerUser or PerUserRateLimit") {
		t.Fatalf("per-user rate limit without a user header: %v", err)
	}
}

// The experiments of Config.Faults start with the kit, each with an Info
// alert, reach the middleware and the admin handler, and end with Close,
// their alerts resolved.
func TestNewStartsFaultExperiments(t *testing.T) {
	var mu sync.Mutex
	var got []alert.Alert
	k, err := New(Config{
		Faults: &core.FaultLimits{Experiments: []core.Fault{
			{ID: "teapot", Endpoint: "GET /tea", Percent: 100, Status: 418, Header: "X-Chaos", Reason: "game day"},
		}},
		Alerts: AlertsConfig{Handlers: []alert.Handler{alert.HandlerFunc(func(a alert.Alert) {
			mu.Lock()
			got = append(got, a)
			mu.Unlock()
		})}},
		Admin:  admin.Config{Token: "0123456789abcdef0123"},
		Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	alerts := func() []alert.Alert {
		mu.Lock()
		defer mu.Unlock()
		return append([]alert.Alert(nil), got...)
	}
	wait.For(t, 5*time.Second, "the experiment's alert", func() bool { return len(alerts()) == 1 })
	if a := alerts()[0]; a.Severity != alert.Info || a.Type.Metadata["fault_id"] != "teapot" || a.Resolved {
		t.Fatalf("alert %+v", a)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /tea", k.Middleware()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	r := httptest.NewRequest("GET", "/tea", nil)
	r.Header.Set("X-Chaos", "1")
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, r)
	if rec.Code != 418 || rec.Header().Get("X-Bulwark-Fault") != "teapot" {
		t.Fatalf("GET /tea: %d %v", rec.Code, rec.Header())
	}
	rec = httptest.NewRecorder()
	k.Admin().ServeHTTP(rec, adminRequest("GET", "/faults", ""))
	if !strings.Contains(rec.Body.String(), `"id":"teapot"`) || !strings.Contains(rec.Body.String(), `"injected":1`) {
		t.Fatalf("GET faults: %d %s", rec.Code, rec.Body)
	}
	if err := k.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fs := k.Manager().Faults(); len(fs) != 0 {
		t.Fatalf("running after Close: %+v", fs)
	}
	if all := alerts(); len(all) != 2 || !all[1].Resolved || all[1].ID != all[0].ID {
		t.Fatalf("alerts after Close: %+v", all)
	}
}

// A rate limit is made the cluster's by the file's "shared: true": with
// Redis the instances split it by their demand, and a runtime patch
// carries the key to every instance.
func TestSharedRateLimitFromTheFile(t *testing.T) {
	srv := redistest.Start(t)
	const ep = "GET /x"
	src := `
endpoints:
  "GET /x": {rate_limit: {rate: 1000, burst: 100, shared: true}}
store:
  redis: {url: "redis://` + srv.Addr() + `", sync_interval: 100ms}
`
	limiter := func(k *Kit) *core.RateLimiter {
		t.Helper()
		e, err := k.Manager().Endpoint(ep)
		if err != nil || e.RateLimiter() == nil || e.Config().RateLimit == nil {
			t.Fatalf("endpoint %v, %v", e, err)
		}
		return e.RateLimiter()
	}
	mk := func(id string) *Kit {
		cfg, err := ParseConfig("b.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if c := cfg.Endpoints[ep].RateLimit; c == nil || !c.Shared || c.Rate != 1000 || c.Burst != 100 {
			t.Fatalf("rate_limit from the file: %+v", c)
		}
		cfg.Store.Redis.InstanceID = id
		return newKit(t, cfg)
	}
	a, b := mk("a"), mk("b")
	la, lb := limiter(a), limiter(b)
	if settings, _ := a.EndpointSettings(ep); !strings.Contains(string(settings), `"shared":true`) {
		t.Fatalf("settings %s", settings)
	}

	// a is busy, b idle: a gets nearly the whole limit.
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				_ = la.Allow()
			}
		}
	}()
	defer func() {
		close(stop)
		<-done
	}()
	wait.For(t, 10*time.Second, "a to hold nearly all of the limit", func() bool {
		return la.Stats().Share > 0.9 && lb.Stats().Share < 0.1
	})
	if st := lb.Stats(); math.Abs(st.Rate-1000*st.Share) > 1e-6 {
		t.Fatalf("b's rate %v for a share of %v", st.Rate, st.Share)
	}

	// A patch turns sharing off, on both, and keeps the file's rate.
	if err := a.Reconfigure(context.Background(), ep, []byte(`{"rate_limit": {"shared": false}}`)); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "both to have the whole limit again", func() bool {
		e, _ := b.Manager().Lookup(ep)
		c := e.Config().RateLimit
		return !c.Shared && c.Rate == 1000 && la.Stats().Share == 1 && lb.Stats().Share == 1
	})
	if settings, src := b.EndpointSettings(ep); src != "runtime" || !strings.Contains(string(settings), `"shared":false`) {
		t.Fatalf("b's settings %s from %s", settings, src)
	}
}
