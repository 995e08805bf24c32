package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bulwark-go/bulwark/admin"
	"github.com/bulwark-go/bulwark/core"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The system clock's coarse ticker stops itself after a second idle.
		goleak.IgnoreTopFunction("github.com/bulwark-go/bulwark/core.(*sysClock).tick"),
	)
}

var seedTime = time.Date(2025, 10, 8, 12, 0, 0, 0, time.UTC)

const testToken = "s3cret-token-0123456789"

// fixture is a Manager on a fake clock, a Handler and a test server.
type fixture struct {
	clock *core.FakeClock
	m     *core.Manager
	h     *admin.Handler
	srv   *httptest.Server
}

// newManager makes a Manager whose breakers open after 3 failures in a row
// and stay open 30s.
func newManager(t testing.TB, clock core.Clock, cfg ...core.ManagerConfig) *core.Manager {
	t.Helper()
	var c core.ManagerConfig
	if len(cfg) > 0 {
		c = cfg[0]
	}
	c.Clock = clock
	if c.Defaults.Breaker == nil {
		c.Defaults.Breaker = &core.BreakerConfig{FailureThreshold: 3, Timeout: 30 * time.Second}
	}
	m, err := core.NewManager(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// quiet fills in the fields tests leave alone: no pings or periodic
// snapshots unless asked for, and no log output.
func quiet(cfg admin.Config) admin.Config {
	if cfg.PingInterval == 0 {
		cfg.PingInterval = time.Hour
	}
	if cfg.SnapshotInterval == 0 {
		cfg.SnapshotInterval = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = discard()
	}
	return cfg
}

// newHandler makes a handler for cfg (a Manager on a fake clock filled in
// when it has none) and closes it when the test ends.
func newHandler(t testing.TB, cfg admin.Config) (*admin.Handler, *core.Manager) {
	t.Helper()
	if cfg.Manager == nil {
		cfg.Manager = newManager(t, core.NewFakeClock(seedTime))
	}
	h, err := admin.New(quiet(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h, cfg.Manager
}

// newFixture serves a handler for cfg at the root of a test server.
func newFixture(t testing.TB, cfg admin.Config) *fixture {
	t.Helper()
	f := &fixture{clock: core.NewFakeClock(seedTime)}
	if cfg.Manager == nil {
		cfg.Manager = newManager(t, f.clock)
	}
	f.h, f.m = newHandler(t, cfg)
	f.srv = httptest.NewServer(f.h)
	t.Cleanup(f.srv.Close) // before the handler's Close: cleanups run last first
	return f
}

// endpoint returns the Manager's endpoint name, making it.
func endpoint(t testing.TB, m *core.Manager, name string) *core.Endpoint {
	t.Helper()
	e, err := m.Endpoint(name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// breaker returns the Manager's breaker for name, making the endpoint.
func breaker(t testing.TB, m *core.Manager, name string) *core.Breaker {
	t.Helper()
	return endpoint(t, m, name).Breaker()
}

func (f *fixture) breaker(t testing.TB, name string) *core.Breaker { return breaker(t, f.m, name) }

type response struct {
	code int
	hdr  http.Header
	body []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errorText(t testing.TB) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	r.json(t, &e)
	if e.Error == "" {
		t.Fatalf("no error message in %s", r.body)
	}
	return e.Error
}

func newRequest(t testing.TB, ctx context.Context, method, url, token, body string, hdr []string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return req
}

// do sends a request to a server; hdr holds header names and values.
func do(t testing.TB, method, url, token, body string, hdr ...string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := noRedirect.Do(newRequest(t, ctx, method, url, token, body, hdr))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// serve sends a request straight to h, without a network: it works inside
// a synctest bubble.
func serve(t testing.TB, h http.Handler, method, path, token, body string, hdr ...string) response {
	t.Helper()
	req := newRequest(t, context.Background(), method, "http://admin.test"+path, token, body, hdr)
	req.RequestURI = req.URL.RequestURI()
	if req.Body == nil {
		req.Body = http.NoBody // as a server's request has
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
